package pipeline

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// This file holds the rules Jumio sets for ID and selfie images uploaded
// over the API channel, which kycpipe checks at the door (ingest answers 422
// before anything is stored or a Jumio account exists) and again in the
// worker for jobs published straight to NATS:
//
//   - end-user consent (jumio-api.md §10.1): "Transactions that include
//     collecting ID or biometric credentials … require end-user consent prior
//     to uploading the data … The user consent data must be added to the body
//     of the Account creation or update request": userConsent {userIp,
//     userLocation {country}, consent {obtained: "yes", obtainedAt}} for any
//     FRONT, BACK or FACE image;
//   - the ID's country and type (jumio-api.md §10.2): "If the images are
//     uploaded via the REST APIs the information must be provided as a
//     credential object of the account creation or update body":
//     workflowDefinition.credentials [{category: ID, country {values}, type
//     {values}}] for FRONT and BACK images (a selfie alone needs no ID
//     type).

// CheckUploadRules returns the violations of Jumio's rules for API-channel
// image uploads by req. classifiers are the images the job sends (nil: the
// classifiers of req.Parts). Jobs of other channels, and API jobs without
// images, have none.
func CheckUploadRules(req *messages.VerificationRequest, classifiers []string) []jumio.FieldError {
	if req.EffectiveChannel() != messages.ChannelAPI {
		return nil
	}
	if classifiers == nil {
		for _, p := range req.Parts {
			classifiers = append(classifiers, p.Classifier)
		}
	}
	hasID := slices.Contains(classifiers, jumio.PartFront) || slices.Contains(classifiers, jumio.PartBack)
	if !hasID && !slices.Contains(classifiers, jumio.PartFace) {
		return nil
	}
	fields := checkConsent(req.UserConsent)
	if hasID && !namesIDCountryAndType(req.WorkflowDefinition.Credentials) {
		fields = append(fields, jumio.FieldError{Field: "workflowDefinition.credentials", Code: jumio.CodeRequired,
			Message: `must name the ID's country and type for ID images sent over the API, e.g. [{"category":"ID","country":{"values":["USA"]},"type":{"values":["DRIVING_LICENSE"]}}] (Jumio cannot judge the ID without them)`})
	}
	return fields
}

// checkConsent requires a complete, affirmative end-user consent.
func checkConsent(c *messages.UserConsent) []jumio.FieldError {
	const why = " (Jumio refuses ID and selfie uploads without the end user's consent)"
	if c == nil {
		return []jumio.FieldError{{Field: "userConsent", Code: jumio.CodeRequired,
			Message: "is required for ID and selfie images sent over the API: userIp, userLocation.country, consent.obtained \"yes\" and consent.obtainedAt" + why}}
	}
	var fields []jumio.FieldError
	req := func(field, msg string) {
		fields = append(fields, jumio.FieldError{Field: "userConsent." + field, Code: jumio.CodeRequired, Message: msg + why})
	}
	if strings.TrimSpace(c.UserIP) == "" {
		req("userIp", "is required: the end user's IP address")
	}
	if c.UserLocation == nil || strings.TrimSpace(c.UserLocation.Country) == "" {
		req("userLocation.country", "is required: the end user's country (ISO 3166-1 alpha-3)")
	}
	switch {
	case c.Consent == nil:
		req("consent", "is required: {obtained: \"yes\", obtainedAt}")
	default:
		if c.Consent.Obtained != "yes" {
			fields = append(fields, jumio.FieldError{Field: "userConsent.consent.obtained", Code: jumio.CodeInvalidValue,
				Message: `must be "yes"` + why})
		}
		if strings.TrimSpace(c.Consent.ObtainedAt) == "" {
			req("consent.obtainedAt", "is required: when the consent was obtained")
		}
	}
	return fields
}

// namesIDCountryAndType reports whether an ID credential names at least one
// country and one document type.
func namesIDCountryAndType(creds []messages.CredentialDefinition) bool {
	for _, c := range creds {
		if c.Category == messages.CategoryID && c.Country != nil && len(c.Country.Values) > 0 && c.Type != nil && len(c.Type.Values) > 0 {
			return true
		}
	}
	return false
}

// checkJobUploads applies the upload rules and, for images carried in the
// message itself, the image rules, to a job as the worker receives it. It
// returns a *jumio.ValidationError or nil.
func checkJobUploads(req *messages.VerificationRequest) error {
	fields := CheckUploadRules(req, nil)
	for i, p := range req.Parts {
		if len(p.Data) == 0 {
			continue // stored by ingest, which checked it
		}
		path := fmt.Sprintf("parts[%d].data", i)
		ct, ok := ImageType(p.Data)
		if !ok {
			fields = append(fields, jumio.FieldError{Field: path, Code: jumio.CodeInvalidValue, Message: "must be a JPEG or PNG image"})
			continue
		}
		fields = append(fields, checkImage(path, ct, bytes.NewReader(p.Data))...)
	}
	if len(fields) == 0 {
		return nil
	}
	return &jumio.ValidationError{Fields: fields}
}

// classifiersOf lists the classifiers of images read so far.
func classifiersOf(imgs []pendingImage) []string {
	out := make([]string, 0, len(imgs))
	for _, im := range imgs {
		out = append(out, im.classifier)
	}
	return out
}

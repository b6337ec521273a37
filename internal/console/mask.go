package console

import (
	"bytes"
	"encoding/json"
	"slices"
	"sort"
)

// Payloads outside a job's page (dead letters) are shown with every value
// hidden except those of fields known to hold no personal data: IDs,
// states, codes, times, the workflow definition. The rule is an allowlist,
// so a field added to a payload later is hidden until it is listed here.
var clearFields = map[string]bool{
	"schema": true, "jobId": true, "region": true, "accountId": true, "workflowExecutionId": true, "channel": true,
	"workflowDefinition": true, "key": true, "credentials": true, "category": true, "capabilities": true,
	"tokenLifetime": true, "status": true, "kind": true, "at": true, "receivedAt": true, "deadline": true,
	"submittedAt": true, "decidedAt": true, "createdAt": true, "startedAt": true, "completedAt": true,
	"id": true, "definitionKey": true, "callbackSentAt": true, "decision": true, "type": true, "label": true,
	"riskScore": true, "classifier": true, "contentType": true, "size": true, "parts": true, "object": true,
	"source": true, "actor": true, "requestedAt": true, "workflowExecution": true, "account": true,
	"callback": true, "code": true, "message": true, "error": true, "attempt": true, "endpointId": true,
	"eventType": true, "webhookId": true, "trigger": true,
}

// hiddenValue replaces a hidden value.
const hiddenValue = "‹hidden›"

// maskedPayload is a payload as the dead-letter page shows it.
type maskedPayload struct {
	Text   string   // indented JSON with hidden values, or "" when not JSON
	Hidden []string // the fields whose values are hidden
	Size   int
}

// maskPayload hides every value of data not under a clear field. A payload
// that is not a JSON object is not shown at all.
func maskPayload(data []byte) maskedPayload {
	out := maskedPayload{Size: len(data)}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return out
	}
	hidden := map[string]bool{}
	masked := maskValue(v, true, "", hidden)
	b, err := json.MarshalIndent(masked, "", "  ")
	if err != nil {
		return maskedPayload{Size: len(data)}
	}
	out.Text = string(b)
	for k := range hidden {
		out.Hidden = append(out.Hidden, k)
	}
	sort.Strings(out.Hidden)
	return out
}

// maskValue walks v: under a clear field, scalars are kept and objects
// walked; anything else is replaced by hiddenValue (objects and arrays as
// a whole). path names the field for the list of hidden ones.
func maskValue(v any, clear bool, path string, hidden map[string]bool) any {
	switch x := v.(type) {
	case map[string]any:
		if !clear {
			hidden[path] = true
			return hiddenValue
		}
		out := make(map[string]any, len(x))
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			out[k] = maskValue(x[k], clearFields[k], p, hidden)
		}
		return out
	case []any:
		if !clear {
			hidden[path] = true
			return hiddenValue
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = maskValue(e, true, path+"[]", hidden)
		}
		return out
	default:
		if !clear {
			if v == nil {
				return nil
			}
			hidden[path] = true
			return hiddenValue
		}
		return v
	}
}

package jumiotest

import (
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// A transaction token, whose claims are written by hand, is the token
// signJWT makes of the same claims as a map (json.Marshal's encoding).
func TestTransactionTokenEncodesLikeJSONMarshal(t *testing.T) {
	s := NewServer(Options{Logger: zap.NewNop()})
	defer s.Close()
	iat := time.Unix(1_765_000_000, 0)
	for _, kind := range []string{"api", "web", "sdk"} {
		tok := s.transactionToken(kind, newUUID(), newUUID(), iat, iat.Add(30*time.Minute))
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			t.Fatalf("%s token %q", kind, tok)
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var claims map[string]any
		if err := json.Unmarshal(payload, &claims); err != nil {
			t.Fatalf("%s claims %s: %v", kind, payload, err)
		}
		// Numbers back to integers, as the old code put them in the map.
		for _, k := range []string{"iat", "exp"} {
			claims[k] = int64(claims[k].(float64))
		}
		if want := s.signJWT(sha512.New, "HS512", claims); want != tok {
			t.Errorf("%s token:\n got %s\nwant %s", kind, tok, want)
		}
	}
}

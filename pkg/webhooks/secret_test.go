package webhooks_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// specSecret is the secret of the Standard Webhooks test vector.
const specSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func mustSecret(t testing.TB, s string) webhooks.Secret {
	t.Helper()
	sec, err := webhooks.ParseSecret(s)
	if err != nil {
		t.Fatalf("ParseSecret: %v", err)
	}
	return sec
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	a, b := webhooks.NewSecret(), webhooks.NewSecret()
	s := a.Reveal()
	if !strings.HasPrefix(s, "whsec_") {
		t.Fatalf("secret %q lacks the whsec_ prefix", s)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
	if err != nil || len(key) != webhooks.SecretSize {
		t.Fatalf("key: %d bytes, %v; want %d bytes of standard base64", len(key), err, webhooks.SecretSize)
	}
	back, err := webhooks.ParseSecret(s)
	if err != nil || !back.Equal(a) {
		t.Fatalf("ParseSecret(Reveal()) = %v, %v; want the same key", back, err)
	}
	if a.Equal(b) {
		t.Fatal("two new secrets are equal")
	}
	if a.IsZero() || !(webhooks.Secret{}).IsZero() {
		t.Fatal("IsZero is wrong")
	}
}

func TestParseSecret(t *testing.T) {
	t.Parallel()
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xA5}, n)) }
	tests := []struct {
		name    string
		in      string
		wantLen int // 0: an error is expected
	}{
		{"spec vector (24 bytes)", specSecret, 24},
		{"32 bytes", "whsec_" + b64(32), 32},
		{"64 bytes", "whsec_" + b64(64), 64},
		{"surrounding spaces", "  " + specSecret + "\n", 24},
		{"empty", "", 0},
		{"prefix only", "whsec_", 0},
		{"no prefix", strings.TrimPrefix(specSecret, "whsec_"), 0},
		{"wrong prefix", "whsek_" + b64(32), 0},
		{"not base64", "whsec_!!!!notbase64!!!!secretvalue", 0},
		{"url-safe base64 alphabet", "whsec_" + strings.Repeat("-_", 16), 0},
		{"too short (16 bytes)", "whsec_" + b64(16), 0},
		{"too long (65 bytes)", "whsec_" + b64(65), 0},
		{"missing padding", "whsec_" + strings.TrimRight(b64(32), "="), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := webhooks.ParseSecret(tt.in)
			if tt.wantLen == 0 {
				if !errors.Is(err, webhooks.ErrInvalidSecret) {
					t.Fatalf("err = %v, want ErrInvalidSecret", err)
				}
				if body := strings.TrimSpace(strings.TrimPrefix(tt.in, "whsec_")); len(body) > 4 && strings.Contains(err.Error(), body) {
					t.Fatalf("error %q repeats the secret", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSecret: %v", err)
			}
			key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(s.Reveal(), "whsec_"))
			if len(key) != tt.wantLen {
				t.Fatalf("key length %d, want %d", len(key), tt.wantLen)
			}
		})
	}
}

func TestParseSecrets(t *testing.T) {
	t.Parallel()
	a, b := webhooks.NewSecret(), webhooks.NewSecret()
	got, err := webhooks.ParseSecrets(a.Reveal() + ", " + b.Reveal() + "\n")
	if err != nil || len(got) != 2 || !got[0].Equal(a) || !got[1].Equal(b) {
		t.Fatalf("ParseSecrets = %v, %v", got, err)
	}
	for _, in := range []string{"", " , ", a.Reveal() + ",whsec_bad"} {
		if _, err := webhooks.ParseSecrets(in); !errors.Is(err, webhooks.ErrInvalidSecret) {
			t.Errorf("ParseSecrets(%q): err = %v, want ErrInvalidSecret", in, err)
		}
	}
}

// A Secret never shows its key through fmt, zap or JSON.
func TestSecretRedaction(t *testing.T) {
	t.Parallel()
	s := mustSecret(t, specSecret)
	key := strings.TrimPrefix(specSecret, "whsec_")
	type holder struct {
		Name   string
		Secret webhooks.Secret
		Ptr    *webhooks.Secret
	}
	h := holder{Name: "endpoint", Secret: s, Ptr: &s}
	outputs := map[string]string{
		"String":   s.String(),
		"GoString": s.GoString(),
		"Sprint":   fmt.Sprint(s),
		"Errorf":   fmt.Errorf("failed with %v", s).Error(),
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		outputs["Sprintf "+verb] = fmt.Sprintf(verb, s)
		outputs["Sprintf struct "+verb] = fmt.Sprintf(verb, h)
	}
	var buf bytes.Buffer
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zap.DebugLevel))
	logger.Info("x", zap.Any("secret", s), zap.Stringer("stringer", s), zap.Any("holder", h), zap.Reflect("reflect", h))
	outputs["zap"] = buf.String()
	if _, err := json.Marshal(h); err == nil {
		t.Error("json.Marshal of a struct holding a Secret succeeded; it must fail")
	}
	for name, out := range outputs {
		if strings.Contains(out, key) || strings.Contains(out, "MfKQ") {
			t.Errorf("%s leaks the key: %s", name, out)
		}
	}
	if got := fmt.Sprintf("%v", s); got != "whsec_[REDACTED]" {
		t.Errorf("%%v = %q, want whsec_[REDACTED]", got)
	}
	if s.Reveal() != specSecret {
		t.Errorf("Reveal = %q, want the secret string", s.Reveal())
	}
}

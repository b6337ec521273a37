package jumio

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// readResponse gives a json.RawMessage what json.Unmarshal gives it
// (without its second pass and copy), and its error for a body that is
// not one JSON value.
func TestReadResponseIntoRawMessage(t *testing.T) {
	c, err := New(Credentials{ClientID: "id", ClientSecret: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodGet, "https://example.com/", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{`{"a":1}`, " \n{\"a\": [1, 2]}\r\n\t", `[1,2]`, `"x"`, `null`, `7`,
		`{"a":}`, `{"a":1} x`, `{"a":1}{}`, "{\"a\":\"\xff\"}", `{"a":1`, "\v{}"} {
		resp := &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader(body)), Request: req}
		var got json.RawMessage
		gotErr := c.readResponse(resp, "test", &got)
		var want json.RawMessage
		wantErr := json.Unmarshal([]byte(body), &want)
		if (gotErr != nil) != (wantErr != nil) {
			t.Errorf("%q: error %v, json.Unmarshal's %v", body, gotErr, wantErr)
			continue
		}
		if gotErr != nil {
			if !errors.Is(gotErr, ErrInvalidResponse) {
				t.Errorf("%q: error %v is not ErrInvalidResponse", body, gotErr)
			}
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%q: raw %q, json.Unmarshal's %q", body, got, want)
		}
	}
}

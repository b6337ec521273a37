package messages

import "errors"

// Sentinel errors of the decoders and checks. Every error they return is an
// [*InputError] matching one of them.
var (
	ErrMalformed         = errors.New("messages: malformed message")
	ErrUnsupportedSchema = errors.New("messages: unsupported schema")
	ErrInvalidCallback   = errors.New("messages: invalid callback")
)

// InputError says why an input was refused, in words safe to return to the
// client that sent it: it never echoes submitted values.
type InputError struct {
	kind   error  // one of the sentinels above
	what   string // the kind in words: "malformed message", …
	Detail string // what is wrong
}

func inputError(kind error, detail string) *InputError {
	what := map[error]string{ErrMalformed: "malformed message", ErrUnsupportedSchema: "unsupported schema",
		ErrInvalidCallback: "invalid callback"}[kind]
	return &InputError{kind: kind, what: what, Detail: detail}
}

// Error implements error.
func (e *InputError) Error() string { return "messages: " + e.Public() }

// Public is the error without the package prefix, as an API answer's
// detail: "malformed message: truncated JSON".
func (e *InputError) Public() string { return e.what + ": " + e.Detail }

// Is matches the error's sentinel.
func (e *InputError) Is(target error) bool { return target == e.kind }

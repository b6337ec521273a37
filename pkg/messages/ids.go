package messages

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"time"
)

// crockford is Crockford's base32 alphabet in lower case: no i, l, o or u.
var crockford = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewJobID returns a new job ID: "job_" followed by 26 characters that sort
// by creation time (48 bits of milliseconds, 80 random bits).
func NewJobID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	_, _ = rand.Read(b[6:])
	return "job_" + crockford.EncodeToString(b[:])
}

// IdempotentJobID derives a job ID from an Idempotency-Key, so that every
// submission with the same key names the same job: "idem_" followed by 26
// characters of the key's SHA-256.
func IdempotentJobID(key string) string {
	sum := sha256.Sum256([]byte("kycpipe/idempotency-key/v1\x00" + key))
	return "idem_" + crockford.EncodeToString(sum[:16])
}

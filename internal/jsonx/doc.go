// Package jsonx holds the pieces kycpipe's hand-written JSON encoders and
// decoders share (pkg/messages, pkg/pipeline, pkg/jumio): appenders whose
// output is byte for byte what encoding/json writes, and a reader for
// decoding fast paths.
//
// The decoders built on [Reader] are fast paths, not replacements: they
// handle the documents kycpipe itself writes, well-formed requests and
// Jumio's retrieval documents, and give up (any Reader method returning
// false) on everything else: a duplicate key, a key that is not spelled
// exactly as a field, an escape they do not handle, invalid UTF-8, nesting
// deeper than encoding/json allows, an error. Their callers then decode the
// same bytes with encoding/json, so every error, and every corner of
// encoding/json's semantics, stays what it was. Fuzz tests check that a
// fast path that succeeds agrees with encoding/json.
package jsonx

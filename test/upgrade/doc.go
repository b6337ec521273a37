// Package upgrade holds kycpipe's rolling-upgrade tests (build tag
// upgrade; `make test-upgrade`): the previous release, built from git, is
// upgraded process by process to the current tree while jobs flow
// (internal/upgrade), and the old release's decoders read the current
// release's golden corpus (pkg/pipeline/testdata/golden).
package upgrade

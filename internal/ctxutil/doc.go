// Package ctxutil holds small helpers for waiting while honouring a
// [context.Context].
//
// [Sleep] replaces a bare time.Sleep wherever the wait must end when the
// caller's context does (backoff between retries, pacing loops, polling a
// condition):
//
//	for !ready() {
//		if !ctxutil.Sleep(ctx, 200*time.Millisecond) {
//			return ctx.Err()
//		}
//	}
package ctxutil

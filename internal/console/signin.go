package console

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// signInLifetime is how long a sign-in form stays usable.
const signInLifetime = 15 * time.Minute

type signInData struct {
	Token string // the form's CSRF token (also in the sign-in cookie)
	Next  string
	Error string
}

func (c *Console) cookie(r *http.Request, name, value string, maxAge time.Duration) *http.Cookie {
	ck := &http.Cookie{Name: name, Value: value, Path: Prefix, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.secure(r)}
	if maxAge > 0 {
		ck.MaxAge = int(maxAge / time.Second)
		ck.Expires = c.now().Add(maxAge).UTC()
	} else {
		ck.MaxAge = -1
		ck.Expires = time.Unix(1, 0)
	}
	return ck
}

// signInForm shows the sign-in form, with a fresh CSRF token in a
// short-lived cookie and in the form (the POST must carry both).
func (c *Console) signInForm(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if c.session(r) != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	c.showSignIn(w, r, http.StatusOK, next, "", flashOf(r))
}

func (c *Console) showSignIn(w http.ResponseWriter, r *http.Request, status int, next, msg string, fl *flash) {
	token := randomToken()
	http.SetCookie(w, c.cookie(r, signInCookie, token, signInLifetime))
	c.write(w, status, "signin.html", page{Title: "Sign in", Now: c.now(), ReadOnly: c.cfg.ReadOnly, Flash: fl,
		Data: signInData{Token: token, Next: next, Error: msg}})
}

// signIn checks the key of the sign-in form and starts a session. Failed
// attempts are rate-limited per client address (and overall) and logged
// with the address, never the key.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	client := clientAddr(r, c.cfg.TrustedProxies)
	next := safeNext(r.PostFormValue("next"))
	ck, err := r.Cookie(signInCookie)
	if err != nil || r.Header.Get("Sec-Fetch-Site") == "cross-site" || !tokensEqual(ck.Value, r.PostFormValue("csrf")) {
		c.log.Warn("console: sign-in refused: no valid CSRF token", zap.String("client", client.String()))
		c.errorPage(w, r, http.StatusForbidden, "This sign-in form has expired or did not come from the console. Open the sign-in page again.")
		return
	}
	if ok, wait := c.limiter.allowed(client); !ok {
		minutes := max(1, int(math.Ceil(wait.Minutes())))
		c.log.Warn("console: sign-in refused: too many failures", zap.String("client", client.String()))
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
		c.showSignIn(w, r, http.StatusTooManyRequests, next, fmt.Sprintf("Too many failed sign-ins. Try again in %d min.", minutes), nil)
		return
	}
	p, ok := c.cfg.APIKeys.Authenticate(strings.TrimSpace(r.PostFormValue("key")))
	if !ok {
		c.limiter.failed(client)
		c.log.Warn("console: sign-in failed: unknown key", zap.String("client", client.String()))
		c.showSignIn(w, r, http.StatusUnauthorized, next, "That API key is not valid.", nil)
		return
	}
	if !p.Has(pipeline.ScopeRead) {
		c.log.Info("console: sign-in refused: the key lacks the read scope", zap.String("key", p.Name), zap.String("client", client.String()))
		c.showSignIn(w, r, http.StatusForbidden, next, "This API key lacks the read scope the console needs.", nil)
		return
	}
	id, _ := c.sessions.create(p)
	http.SetCookie(w, c.cookie(r, sessionCookie, id, c.cfg.SessionMax))
	http.SetCookie(w, c.cookie(r, signInCookie, "", 0))
	c.log.Info("console: signed in", zap.String("key", p.Name), zap.String("client", client.String()))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// signOut ends the session and its cookie.
func (c *Console) signOut(w http.ResponseWriter, q request) {
	if ck, err := q.r.Cookie(sessionCookie); err == nil {
		c.sessions.delete(ck.Value)
	}
	http.SetCookie(w, c.cookie(q.r, sessionCookie, "", 0))
	c.log.Info("console: signed out", zap.String("key", q.sess.principal.Name))
	http.Redirect(w, q.r, "/console/signin?done=signedout", http.StatusSeeOther)
}

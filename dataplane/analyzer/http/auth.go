package http

import (
	"encoding/base64"
	"strings"
)

// parseAuth decodes an Authorization value: the scheme in lower case, Basic
// credentials base64-decoded (padding optional), the credential string of
// other schemes in Token. A Basic credential that does not decode is kept in
// Token as sent, with User and Password empty.
func parseAuth(v string, a *Auth) {
	*a = Auth{}
	v = strings.Trim(v, " \t")
	scheme, cred := v, ""
	if i := strings.IndexAny(v, " \t"); i >= 0 {
		scheme, cred = v[:i], strings.TrimLeft(v[i+1:], " \t")
	}
	a.Scheme = lowerScheme(scheme)
	if a.Scheme != "basic" {
		a.Token = cred
		return
	}
	dec, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		dec, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(cred, "="))
	}
	if err != nil {
		a.Token = cred
		return
	}
	s := string(dec)
	if i := strings.IndexByte(s, ':'); i >= 0 {
		a.User, a.Password = s[:i], s[i+1:]
	} else {
		a.User = s
	}
}

// lowerScheme lower-cases an authentication scheme without allocating for the
// registered ones.
func lowerScheme(s string) string {
	for _, k := range [...]string{"basic", "bearer", "digest", "negotiate", "ntlm", "aws4-hmac-sha256"} {
		if strings.EqualFold(s, k) {
			return k
		}
	}
	return strings.ToLower(s)
}

package api

import "strings"

// bearerSecret returns the credentials of an Authorization header of the
// Bearer scheme. The scheme name is case-insensitive (RFC 9110 §11.1), so
// "bearer x" and "BEARER x" carry the secret x as "Bearer x" does; spaces
// around the secret are ignored.
func bearerSecret(h string) (string, bool) {
	scheme, secret, ok := strings.Cut(strings.TrimLeft(h, " \t"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	secret = strings.TrimSpace(secret)
	return secret, secret != ""
}

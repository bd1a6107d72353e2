package zendesk

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// TestCredentialsAtEveryOffsetAroundTheCuts puts a credential at every
// offset around each place where an error body is cut (the 200-character
// description of a text body, the 512-byte body excerpt, and the 64 KiB
// read limit) and checks that no piece of it of 8 characters or more
// survives in the error, its description, its details or its excerpt —
// the text that failures, failures.jsonl and the checkpoint store. Before,
// the body was cut first and redacted after, so a credential straddling
// the cut left its start behind ("token=s3cr3t-TOK", "Basic cnRA…").
func TestCredentialsAtEveryOffsetAroundTheCuts(t *testing.T) {
	const (
		email = "migrations@example.com"
		token = "s3cr3tTOKENvalue0123456789abcdefXYZ"
	)
	basic := base64.StdEncoding.EncodeToString([]byte(email + "/token:" + token))
	const (
		unknownBearer = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl"
		unknownToken  = "Zq8Rt5Wm2Lp9Xv4Kc7Nb1Hd6Gf3Js0Ya"
	)
	creds := []struct {
		name, text string
		secrets    []string // what must not leak, piece by piece
	}{
		{"known token", token, []string{token}},
		{"token= known", "token=" + token, []string{token}},
		{"Basic header", "Authorization: Basic " + basic, []string{basic}},
		{"bare base64 of email/token:secret", basic, []string{basic}},
		{"unknown Bearer", "Bearer " + unknownBearer, []string{unknownBearer}},
		{"unknown token=", "api_token=" + unknownToken, []string{unknownToken}},
		{"json password", `"password": "` + unknownToken + `"`, []string{unknownToken}},
	}
	type shape struct {
		name        string
		contentType string
		body        func(pre, cred string) string
		cuts        []int // where the body's texts are cut, in bytes
	}
	// around returns the lengths of text before a credential of n bytes
	// that put it across each cut, and just before and after it.
	around := func(n int, cuts []int) []int {
		var out []int
		for _, c := range cuts {
			for o := c - n - 20; o <= c+2; o++ {
				out = append(out, o)
			}
		}
		return out
	}
	shapes := []shape{
		{"text", "text/plain", func(pre, cred string) string { return pre + cred + " and more text after it" }, []int{200, 512}},
		{"json description", "application/json", func(pre, cred string) string {
			return `{"error":"RecordInvalid","description":"` + pre + strings.ReplaceAll(cred, `"`, `\"`) + ` end"}`
		}, []int{200, 300, 512}},
		{"json details", "application/json", func(pre, cred string) string {
			return `{"error":"RecordInvalid","details":{"base":[{"description":"` + pre + strings.ReplaceAll(cred, `"`, `\"`) + `"}]}}`
		}, []int{300, 512}},
		{"cut by the read limit", "text/plain", func(pre, cred string) string { return pre + cred + " tail" }, []int{64 << 10}},
	}
	filler := func(n int) string {
		const words = "the quick brown fox jumps over the lazy dog "
		return strings.Repeat(words, n/len(words)+1)[:n]
	}
	// The secrets a client with these credentials knows (New).
	c, err := New(Options{BaseURL: "https://acme.zendesk.com", Email: email, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	secrets := c.authz.secretList()
	for _, sh := range shapes {
		for _, cr := range creds {
			leaks := 0
			for _, off := range around(len(cr.text), sh.cuts) {
				body := sh.body(filler(off), cr.text)
				// What sendWith does with an error response's body.
				ae := &APIError{Method: "GET", Path: "/api/v2/tickets/1", Status: 422}
				ae.parseErrorBody(readErrorBody(strings.NewReader(body), secrets), secrets)
				texts := []string{ae.Error(), ae.Body, ae.Description, ae.Code, string(ae.Details), fmt.Sprintf("%+v", *ae)}
				for _, s := range texts {
					for _, sec := range cr.secrets {
						if p, ok := piece(s, sec, 8); ok && leaks < 3 {
							leaks++
							t.Errorf("%s, %s at offset %d: %q holds %q, a piece of the credential", sh.name, cr.name, off, clip(s, p), p)
						}
					}
				}
			}
		}
	}
}

// piece returns the first substring of secret of n bytes found in s.
func piece(s, secret string, n int) (string, bool) {
	for i := 0; i+n <= len(secret); i++ {
		if p := secret[i : i+n]; strings.Contains(s, p) {
			return p, true
		}
	}
	return "", false
}

// clip shows the part of s around p.
func clip(s, p string) string {
	i := strings.Index(s, p)
	return s[max(0, i-40):min(len(s), i+len(p)+20)]
}

package zendesk

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// slowFlexString is flexString without its fast paths: what encoding/json
// makes of the value.
func slowFlexString(b []byte) (string, error) {
	var v any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return "", err
	}
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	}
	return "", errors.New("not a string, number or null")
}

func TestFlexStringFastPathsMatchJSON(t *testing.T) {
	for _, in := range []string{
		`"abc"`, `""`, `"a b-c_d@example.com"`, `"<m1@x>"`, `"caf\u00e9"`, `"tab\there"`,
		`"quote\"inside"`, `"back\\slash"`, "\"caf\xc3\xa9\"", "\"bad \xff utf8\"",
		`0`, `-0`, `42`, `-17`, `12345678901234567890`, `1.5`, `1e3`, `-2.5E-3`, `null`,
	} {
		var got flexString
		err := got.UnmarshalJSON([]byte(in))
		want, werr := slowFlexString([]byte(in))
		if (err != nil) != (werr != nil) || string(got) != want {
			t.Errorf("flexString(%s) = %q, %v; encoding/json: %q, %v", in, got, err, want, werr)
		}
	}
}

func FuzzFlexString(f *testing.F) {
	for _, s := range []string{`"abc"`, `42`, `-1`, `"a\"b"`, `1.5e3`, `null`, `"\u00e9"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		want, werr := slowFlexString(b)
		if werr != nil {
			return // an object or an array: not a flexString
		}
		var got flexString
		if err := got.UnmarshalJSON(b); err != nil || string(got) != want {
			t.Errorf("flexString(%s) = %q, %v; encoding/json: %q", b, got, err, want)
		}
	})
}

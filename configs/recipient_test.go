package configs

import (
	"errors"
	"strings"
	"testing"
)

// TestDefaultRecipient: mapping.default_recipient is an address or an
// agent's {user_id} (issue 12, item 15); anything else is a config error
// naming the key and its line.
func TestDefaultRecipient(t *testing.T) {
	good := map[string]Recipient{
		`""`:                              {},
		`list@acme.com`:                   {Email: "list@acme.com"},
		`"The List <list@acme.com>"`:      {Email: "list@acme.com", Name: "The List"},
		`{user_id: 123456}`:               {UserID: 123456},
		`{email: list@acme.com, name: L}`: {Email: "list@acme.com", Name: "L"},
	}
	for yaml, want := range good {
		t.Run(yaml, func(t *testing.T) {
			c, err := Load(writeConfig(t, "mapping:\n  default_recipient: "+yaml+"\n"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.Mapping.DefaultRecipient != want {
				t.Errorf("default_recipient = %+v, want %+v", c.Mapping.DefaultRecipient, want)
			}
		})
	}
	bad := map[string]string{
		`not an address`:                  "is not an email address",
		`42`:                              "want an address",
		`[a@acme.com]`:                    "want a mapping",
		`{user_id: 5, email: a@acme.com}`: "not both",
		`{user_id: -3}`:                   "positive",
		`{name: Nobody}`:                  "needs email",
		`{email: "not an address"}`:       "is not an email address",
		`{user: 5}`:                       "unknown key",
	}
	for yaml, want := range bad {
		t.Run(yaml, func(t *testing.T) {
			_, err := Load(writeConfig(t, "mapping:\n  default_recipient: "+yaml+"\n"), nil)
			var ce *Error
			if !errors.Is(err, ErrConfig) || !errors.As(err, &ce) || !strings.Contains(err.Error(), "mapping.default_recipient") ||
				!strings.Contains(err.Error(), want) || ce.Line != 2 {
				t.Errorf("Load = %v, want a config error on line 2 naming mapping.default_recipient and saying %q", err, want)
			}
		})
	}
}

package zendesk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// The API is not consistent about ids: examples show support_group_id as a
// number in one place and a string in another, user_id as null for
// external participants, and attachment ids as strings or numbers. A list
// that fails to decode would break reconciliation, so responses are read
// leniently: string ids accept numbers, numeric ids accept numeric
// strings, and null leaves the zero value.

// flexString decodes a JSON string, number or null into a string.
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		return nil
	case b[0] == '"':
		if v, ok := plainString(b); ok {
			*s = flexString(v)
			return nil
		}
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = flexString(v)
		return nil
	case isInteger(b):
		*s = flexString(b)
		return nil
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("zendesk: want a string or number, got %.40s", b)
		}
		*s = flexString(n.String())
		return nil
	}
}

// plainString returns the content of a JSON string literal b that needs
// no decoding: printable ASCII without escapes, as ids and e-mail
// addresses are. Anything else is left to encoding/json, which also
// replaces invalid UTF-8. It saves a full json.Unmarshal per field: each
// participant of every event of a response has several.
func plainString(b []byte) (string, bool) {
	if len(b) < 2 || b[len(b)-1] != '"' {
		return "", false
	}
	in := b[1 : len(b)-1]
	for _, c := range in {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return "", false
		}
	}
	return string(in), true
}

// isInteger reports whether b is a JSON integer literal: -?(0|[1-9][0-9]*).
func isInteger(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 || (b[0] == '0' && len(b) > 1) {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// flexInt decodes a JSON number, numeric string or null into an int64.
type flexInt int64

func (i *flexInt) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	if s == "" {
		return nil
	}
	n, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(string(s), 64)
		if ferr != nil {
			return fmt.Errorf("zendesk: want an integer, got %.40q", string(s))
		}
		n = int64(f)
	}
	*i = flexInt(n)
	return nil
}

// UnmarshalJSON decodes a participant leniently (see flexString).
func (p *Participant) UnmarshalJSON(b []byte) error {
	// Most participants have the documented types: decode them as they
	// are, and only an odd one field by field (one method call per field
	// costs more than the whole strict decode).
	type strict Participant
	var sp strict
	if json.Unmarshal(b, &sp) == nil {
		*p = Participant(sp)
		return nil
	}
	var w struct {
		UserID           flexInt    `json:"user_id"`
		Name             flexString `json:"name"`
		Email            flexString `json:"email"`
		SlackWorkspaceID flexString `json:"slack_workspace_id"`
		SlackChannelID   flexString `json:"slack_channel_id"`
		SupportGroupID   flexString `json:"support_group_id"`
		SupportAgentID   flexString `json:"support_agent_id"`
		MSTeamsChannelID flexString `json:"msteams_channel_id"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*p = Participant{
		UserID:           int64(w.UserID),
		Name:             string(w.Name),
		Email:            string(w.Email),
		SlackWorkspaceID: string(w.SlackWorkspaceID),
		SlackChannelID:   string(w.SlackChannelID),
		SupportGroupID:   string(w.SupportGroupID),
		SupportAgentID:   string(w.SupportAgentID),
		MSTeamsChannelID: string(w.MSTeamsChannelID),
	}
	return nil
}

// UnmarshalJSON decodes an attachment leniently: the id may be a string or
// a number, and file_name and name are both accepted.
func (a *AttachmentInfo) UnmarshalJSON(b []byte) error {
	var w struct {
		ID          flexString `json:"id"`
		Name        flexString `json:"name"`
		FileName    flexString `json:"file_name"`
		ContentType flexString `json:"content_type"`
		ContentURL  flexString `json:"content_url"`
		Size        flexInt    `json:"size"`
		Inline      bool       `json:"inline"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*a = AttachmentInfo{
		ID:          string(w.ID),
		Name:        string(w.Name),
		FileName:    string(w.FileName),
		ContentType: string(w.ContentType),
		ContentURL:  string(w.ContentURL),
		Size:        int64(w.Size),
		Inline:      w.Inline,
	}
	if a.Name == "" {
		a.Name = a.FileName
	}
	if a.FileName == "" {
		a.FileName = a.Name
	}
	return nil
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// UnmarshalJSON decodes an event leniently: "via" may be a string or an
// object (other Zendesk APIs send {"channel": ...}).
func (e *Event) UnmarshalJSON(b []byte) error {
	type plain Event
	// The documented shape first ("via" a string or absent).
	var pe plain
	if json.Unmarshal(b, &pe) == nil {
		*e = Event(pe)
		return nil
	}
	var w struct {
		plain
		Via json.RawMessage `json:"via"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*e = Event(w.plain)
	e.Via = ""
	var s string
	var obj struct {
		Channel flexString `json:"channel"`
	}
	switch {
	case len(w.Via) == 0:
	case json.Unmarshal(w.Via, &s) == nil:
		e.Via = s
	case json.Unmarshal(w.Via, &obj) == nil:
		e.Via = string(obj.Channel)
	}
	return nil
}

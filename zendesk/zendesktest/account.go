package zendesktest

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
)

// sideConversationKinds are the request kinds an account without the
// side-conversations add-on refuses (Config.NoSideConversations).
var sideConversationKinds = map[string]bool{
	"list": true, "create": true, "import": true, "show": true, "update": true,
	"reply": true, "events_import": true, "events": true, "upload": true,
}

// SetSideConversations turns the side-conversation endpoints on or off at
// run time: off, each answers 403 as an account without the add-on does.
func (f *Fake) SetSideConversations(enabled bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.noSC = !enabled
}

// forbidden is Zendesk's 403 for a feature the account's plan lacks.
func forbidden(w http.ResponseWriter) {
	writeJSON(w, http.StatusForbidden, map[string]any{
		"error":       "Forbidden",
		"description": "You do not have access to this page. Please contact the account owner of this help desk for further help.",
	})
}

// fakeUserID is the id users/me gives the authenticated user.
const fakeUserID = 9000001

// handleMe answers GET /api/v2/users/me with the user the credentials
// authenticate (authentication was checked before): the API token's email,
// or the configured one; role Config.Role (default admin).
func (f *Fake) handleMe(w http.ResponseWriter, r *http.Request) {
	email := f.cfg.Email
	if scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "basic") {
		if raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred)); err == nil {
			if e, _, ok := strings.Cut(string(raw), "/token:"); ok {
				email = e
			}
		}
	}
	if email == "" {
		email = "agent@example.invalid"
	}
	role := f.cfg.Role
	if role == "" {
		role = "admin"
	}
	name := "Fake " + strings.ToUpper(role[:1]) + role[1:]
	writeJSON(w, http.StatusOK, map[string]any{"user": map[string]any{
		"id": fakeUserID, "name": name, "email": email, "role": role, "role_type": nil,
		"active": true, "verified": true,
		"url": baseURL(r) + "/api/v2/users/" + strconv.Itoa(fakeUserID) + ".json",
	}})
}

// handleShowMany answers GET /api/v2/tickets/show_many?ids=1,2,3 (at most
// 100 ids) with the tickets that exist, in the order asked; missing ones
// are left out, as Zendesk does.
func (f *Fake) handleShowMany(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.Query().Get("ids")
	if strings.TrimSpace(raw) == "" {
		badRequest(w, "ids is required")
		return
	}
	parts := strings.Split(raw, ",")
	if len(parts) > 100 {
		badRequest(w, "Too many ids: at most 100")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]map[string]any, 0, len(parts))
	for _, p := range parts {
		id, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64)
		if err != nil {
			badRequest(w, "ids must be a comma-separated list of ticket ids")
			return
		}
		if t := f.ticketLocked(id, false); t != nil {
			out = append(out, ticketJSON(r, t))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tickets": out, "count": len(out), "next_page": nil, "previous_page": nil})
}

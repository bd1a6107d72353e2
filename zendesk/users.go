package zendesk

import (
	"context"
	"errors"
	"net/http"
)

// User is the part of a Zendesk user threadlift reads.
type User struct {
	// ID is 0 for the anonymous user: GET /api/v2/users/me answers 200
	// with an id of null when a request carries no usable credentials.
	ID     int64  `json:"id"`
	Name   string `json:"name,omitempty"`
	Email  string `json:"email,omitempty"`
	Role   string `json:"role,omitempty"` // end-user | agent | admin
	Active bool   `json:"active"`
	// RoleType is set for agents with a custom or light-agent role
	// (Enterprise): 0 custom, 1 light agent, 2 chat agent, 4 admin.
	RoleType *int `json:"role_type,omitempty"`
}

// IsAgent reports whether the user is an agent or an admin: the roles the
// side-conversation endpoints are allowed for.
func (u *User) IsAgent() bool { return u.ID != 0 && (u.Role == "agent" || u.Role == "admin") }

// Me returns the user the credentials authenticate: GET /api/v2/users/me.
// It never writes. A 200 with the anonymous user (no id) is returned as
// is: check User.ID.
func (c *Client) Me(ctx context.Context) (*User, error) {
	var out struct {
		User *User `json:"user"`
	}
	u := c.url("/api/v2/users/me", nil)
	if err := c.doJSON(ctx, KindUser, http.MethodGet, u, false, nil, &out); err != nil {
		return nil, err
	}
	if out.User == nil {
		return nil, &RequestError{Method: http.MethodGet, Path: u.Path, Sent: true, Status: http.StatusOK,
			Err: errors.New("response has no user")}
	}
	return out.User, nil
}

package zendesktest

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/threadlift/threadlift/zendesk"
)

// Planted is a side conversation put straight into the fake, as another
// tool, an agent or an earlier run would have left it: for tests of what
// reads an account back (verify).
type Planted struct {
	Subject string
	// ThreadKey goes in external_ids.threadlift_thread_key; "" plants a
	// side conversation without one (made in Zendesk's UI, or by another
	// tool).
	ThreadKey string
	// MessageKeys are its events in order, each carrying
	// external_ids.threadlift_message_key; an empty key plants an event
	// without one (an agent's reply in the UI).
	MessageKeys []string
	// CreatedAt is the first event's time; default the fake's clock.
	CreatedAt time.Time
}

// Plant adds a side conversation to a ticket (creating the ticket) and
// returns its id. Nothing is validated: plant what a test needs.
func (f *Fake) Plant(ticketID int64, p Planted) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.ticketLocked(ticketID, true)
	if t == nil {
		panic(fmt.Sprintf("zendesktest: Plant: invalid ticket id %d", ticketID))
	}
	at := p.CreatedAt
	if at.IsZero() {
		at = f.now().UTC()
	}
	var ext map[string]string
	if p.ThreadKey != "" {
		ext = map[string]string{zendesk.ThreadKeyField: p.ThreadKey}
	}
	subject := p.Subject
	if subject == "" {
		subject = "Planted " + p.ThreadKey
	}
	id := uuid.NewString()
	c := &Conversation{SideConversation: zendesk.SideConversation{
		ID: id, TicketID: ticketID, Subject: subject, State: "closed", ExternalIDs: ext,
		CreatedAt: at, UpdatedAt: at, StateUpdatedAt: at, MessageAddedAt: at,
	}}
	from := &zendesk.Participant{Email: "planted@example.com", Name: "Planted"}
	for i, k := range p.MessageKeys {
		typ := "reply"
		if i == 0 {
			typ = "create"
		}
		var mext map[string]string
		if k != "" {
			mext = map[string]string{zendesk.MessageKeyField: k}
		}
		c.Events = append(c.Events, zendesk.Event{
			ID: uuid.NewString(), SideConversationID: id, Type: typ, Via: "api",
			CreatedAt: at.Add(time.Duration(i) * time.Minute), Actor: from,
			Message: &zendesk.EventMessage{Subject: subject, Body: "planted " + k, From: from,
				To: []zendesk.Participant{{Email: "support@example.com"}}, ExternalIDs: mext},
		})
	}
	t.convs = append(t.convs, c)
	f.byID[id] = c
	return id
}

// CopySideConversation plants a duplicate of a ticket's side conversation:
// the same subject, external ids and events (new ids), as a request sent
// twice would leave. It returns the copy's id; false when there is no such
// side conversation on the ticket.
func (f *Fake) CopySideConversation(ticketID int64, id string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	src := f.byID[id]
	t := f.tickets[ticketID]
	if src == nil || t == nil || src.TicketID != ticketID {
		return "", false
	}
	cp := cloneConversation(src)
	cp.ID = uuid.NewString()
	for i := range cp.Events {
		cp.Events[i].ID = uuid.NewString()
		cp.Events[i].SideConversationID = cp.ID
	}
	c := &cp
	t.convs = append(t.convs, c)
	f.byID[c.ID] = c
	return c.ID, true
}

// AddEvent plants one more event on a side conversation, carrying the
// message key (none when ""), as a duplicate append or an agent's reply
// would. It returns false when there is no such side conversation.
func (f *Fake) AddEvent(ticketID int64, id, messageKey string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.byID[id]
	if c == nil || c.TicketID != ticketID {
		return false
	}
	var ext map[string]string
	if messageKey != "" {
		ext = map[string]string{zendesk.MessageKeyField: messageKey}
	}
	from := &zendesk.Participant{Email: "planted@example.com", Name: "Planted"}
	c.Events = append(c.Events, zendesk.Event{
		ID: uuid.NewString(), SideConversationID: id, Type: "reply", Via: "api", CreatedAt: f.now().UTC(), Actor: from,
		Message: &zendesk.EventMessage{Subject: c.Subject, Body: "planted " + messageKey, From: from,
			To: []zendesk.Participant{{Email: "support@example.com"}}, ExternalIDs: ext},
	})
	return true
}

// Load adds the tickets and side conversations of a Dump (as written by
// zendesk-fake --dump), keeping their ids: to start from an account's
// state, or from a hand-written one with duplicates and foreign side
// conversations. A side conversation whose id exists already is replaced.
func (f *Fake) Load(tickets []TicketDump) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, td := range tickets {
		t := f.ticketLocked(td.ID, true)
		if t == nil {
			return fmt.Errorf("zendesktest: load: invalid ticket id %d", td.ID)
		}
		if td.ExternalID != "" {
			t.externalID = td.ExternalID
		}
		for i := range td.SideConversations {
			c := cloneConversation(&td.SideConversations[i])
			if c.ID == "" {
				c.ID = uuid.NewString()
			}
			c.TicketID = td.ID
			for j := range c.Events {
				if c.Events[j].ID == "" {
					c.Events[j].ID = uuid.NewString()
				}
				c.Events[j].SideConversationID = c.ID
			}
			if old := f.byID[c.ID]; old != nil {
				if ot := f.tickets[old.TicketID]; ot != nil {
					for k, x := range ot.convs {
						if x == old {
							ot.convs = append(ot.convs[:k], ot.convs[k+1:]...)
							break
						}
					}
				}
			}
			cp := c
			t.convs = append(t.convs, &cp)
			f.byID[c.ID] = &cp
		}
	}
	return nil
}

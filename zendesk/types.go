package zendesk

import (
	"encoding/json"
	"time"
)

// Participant is a sender or recipient of a side-conversation message. The
// set fields decide the side conversation's type: email (UserID, or Email
// with an optional Name), Slack, child ticket, or Microsoft Teams. Types
// must not be mixed within one message.
type Participant struct {
	UserID           int64  `json:"user_id,omitempty"`
	Name             string `json:"name,omitempty"`
	Email            string `json:"email,omitempty"`
	SlackWorkspaceID string `json:"slack_workspace_id,omitempty"`
	SlackChannelID   string `json:"slack_channel_id,omitempty"`
	SupportGroupID   string `json:"support_group_id,omitempty"`
	SupportAgentID   string `json:"support_agent_id,omitempty"`
	MSTeamsChannelID string `json:"msteams_channel_id,omitempty"`
}

// Message is the message of a side-conversation event, as sent on import.
type Message struct {
	Subject       string            `json:"subject,omitempty"`
	Body          string            `json:"body,omitempty"`
	HTMLBody      string            `json:"html_body,omitempty"`
	From          *Participant      `json:"from,omitempty"`
	To            []Participant     `json:"to"`
	ExternalIDs   map[string]string `json:"external_ids,omitempty"`
	AttachmentIDs []string          `json:"attachment_ids,omitempty"`
}

// ImportEvent is one event of an import or events/import request.
type ImportEvent struct {
	CreatedAt time.Time `json:"created_at"`
	Message   Message   `json:"message"`
}

// ImportSideConversation is the side_conversation object of an import request.
type ImportSideConversation struct {
	Subject     string            `json:"subject"`
	State       string            `json:"state,omitempty"`
	ExternalIDs map[string]string `json:"external_ids,omitempty"`
}

// ImportRequest is the body of POST /api/v2/tickets/{id}/side_conversations/import.
type ImportRequest struct {
	SideConversation ImportSideConversation `json:"side_conversation"`
	Events           []ImportEvent          `json:"events"`
}

// EventsImportRequest is the body of
// POST /api/v2/tickets/{id}/side_conversations/{sc}/events/import.
type EventsImportRequest struct {
	Events []ImportEvent `json:"events"`
}

// SideConversation is a side conversation as the API returns it.
type SideConversation struct {
	ID             string            `json:"id"`
	TicketID       int64             `json:"ticket_id,omitempty"`
	Subject        string            `json:"subject"`
	State          string            `json:"state,omitempty"`
	ExternalIDs    map[string]string `json:"external_ids,omitempty"`
	Participants   []Participant     `json:"participants,omitempty"`
	PreviewText    string            `json:"preview_text,omitempty"`
	URL            string            `json:"url,omitempty"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
	MessageAddedAt time.Time         `json:"message_added_at"`
	StateUpdatedAt time.Time         `json:"state_updated_at"`
}

// EventMessage is an event's message as the API returns it.
type EventMessage struct {
	Subject     string            `json:"subject,omitempty"`
	Body        string            `json:"body,omitempty"`
	HTMLBody    string            `json:"html_body,omitempty"`
	PreviewText string            `json:"preview_text,omitempty"`
	From        *Participant      `json:"from,omitempty"`
	To          []Participant     `json:"to,omitempty"`
	ExternalIDs map[string]string `json:"external_ids,omitempty"`
	Attachments []AttachmentInfo  `json:"attachments,omitempty"`
}

// Event is a side-conversation event as the API returns it.
type Event struct {
	ID                 string        `json:"id"`
	SideConversationID string        `json:"side_conversation_id"`
	Type               string        `json:"type,omitempty"`
	Via                string        `json:"via,omitempty"`
	CreatedAt          time.Time     `json:"created_at"`
	Actor              *Participant  `json:"actor,omitempty"`
	Message            *EventMessage `json:"message,omitempty"`
}

// AttachmentInfo is an uploaded attachment.
type AttachmentInfo struct {
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	FileName    string `json:"file_name,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	ContentURL  string `json:"content_url,omitempty"`
	Size        int64  `json:"size,omitempty"`
	Inline      bool   `json:"inline,omitempty"`
}

// ImportResponse is the 201 body of import and events/import. The
// documented body is {event, side_conversation, updates}; it is decoded
// leniently and the id is taken from side_conversation.id.
type ImportResponse struct {
	Event            *Event            `json:"event,omitempty"`
	Events           []Event           `json:"events,omitempty"`
	SideConversation *SideConversation `json:"side_conversation,omitempty"`
	Updates          json.RawMessage   `json:"updates,omitempty"`
}

// ListResponse is one page of GET /api/v2/tickets/{id}/side_conversations,
// with events sideloaded by include=events as a top-level array matched by
// side_conversation_id.
type ListResponse struct {
	SideConversations []SideConversation `json:"side_conversations"`
	Events            []Event            `json:"events,omitempty"`
	NextPage          *string            `json:"next_page"`
	PreviousPage      *string            `json:"previous_page"`
	Count             int                `json:"count"`
}

// ShowResponse is the body of GET .../side_conversations/{id}.
type ShowResponse struct {
	SideConversation SideConversation `json:"side_conversation"`
	Events           []Event          `json:"events,omitempty"`
}

// Ticket is the part of a ticket threadlift reads.
type Ticket struct {
	ID         int64  `json:"id"`
	ExternalID string `json:"external_id,omitempty"`
	Subject    string `json:"subject,omitempty"`
}

// External id keys threadlift writes (contract §5).
const (
	ThreadKeyField  = "threadlift_thread_key"
	MessageKeyField = "threadlift_message_key"
)

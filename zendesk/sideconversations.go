package zendesk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
)

// maxPages bounds a paginated walk, against a server that never ends it.
const maxPages = 100000

func ticketPath(ticketID int64) string {
	return "/api/v2/tickets/" + strconv.FormatInt(ticketID, 10)
}

func checkTicketID(op string, id int64) error {
	if id <= 0 {
		return fmt.Errorf("zendesk: %s: invalid ticket id %d", op, id)
	}
	return nil
}

// Import creates a side conversation with its first events:
// POST /api/v2/tickets/{ticketID}/side_conversations/import. The body is
// decoded leniently; the new id is resp.SideConversation.ID. A 2xx without
// that id is returned as a *RequestError with OutcomeUnknown true: it
// landed, and the caller finds it by its external ids.
func (c *Client) Import(ctx context.Context, ticketID int64, req *ImportRequest) (*ImportResponse, error) {
	if err := checkTicketID("import", ticketID); err != nil {
		return nil, err
	}
	if req == nil {
		return nil, errors.New("zendesk: import: nil request")
	}
	u := c.url(ticketPath(ticketID)+"/side_conversations/import", nil)
	var out ImportResponse
	if err := c.doJSON(ctx, KindImport, http.MethodPost, u, true, req, &out); err != nil {
		return nil, err
	}
	if out.SideConversation == nil || out.SideConversation.ID == "" {
		return &out, &RequestError{Method: http.MethodPost, Path: u.Path, Sent: true, Status: http.StatusCreated,
			Err: errors.New("response has no side_conversation.id")}
	}
	return &out, nil
}

// ImportEvents appends events to a side conversation:
// POST /api/v2/tickets/{ticketID}/side_conversations/{id}/events/import.
func (c *Client) ImportEvents(ctx context.Context, ticketID int64, sideConversationID string, req *EventsImportRequest) (*ImportResponse, error) {
	if err := checkTicketID("events import", ticketID); err != nil {
		return nil, err
	}
	if sideConversationID == "" {
		return nil, errors.New("zendesk: events import: empty side conversation id")
	}
	if req == nil {
		return nil, errors.New("zendesk: events import: nil request")
	}
	u := c.url(ticketPath(ticketID)+"/side_conversations/"+url.PathEscape(sideConversationID)+"/events/import", nil)
	var out ImportResponse
	if err := c.doJSON(ctx, KindEventsImport, http.MethodPost, u, true, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListSideConversations returns every side conversation of a ticket with
// its events (include=events), following next_page until the end, 100 per
// page. Side conversations and events are deduplicated by id (offset
// pagination can repeat an item when the list changes meanwhile). One
// request per page; an error on any page is returned as is.
func (c *Client) ListSideConversations(ctx context.Context, ticketID int64) ([]SideConversation, []Event, error) {
	if err := checkTicketID("list side conversations", ticketID); err != nil {
		return nil, nil, err
	}
	q := url.Values{"include": {"events"}, "per_page": {"100"}, "page": {"1"}}
	u := c.url(ticketPath(ticketID)+"/side_conversations", q)
	var (
		scs     []SideConversation
		evs     []Event
		seenSC  = map[string]bool{}
		seenEv  = map[string]bool{}
		visited = map[string]bool{}
	)
	for page := 0; ; page++ {
		if page >= maxPages {
			return nil, nil, fmt.Errorf("zendesk: list side conversations of ticket %d: more than %d pages", ticketID, maxPages)
		}
		visited[u.String()] = true
		var lr ListResponse
		if err := c.doJSON(ctx, KindList, http.MethodGet, u, false, nil, &lr); err != nil {
			return nil, nil, err
		}
		for _, sc := range lr.SideConversations {
			if sc.ID == "" || !seenSC[sc.ID] {
				seenSC[sc.ID] = true
				scs = append(scs, sc)
			}
		}
		for _, ev := range lr.Events {
			if ev.ID == "" || !seenEv[ev.ID] {
				seenEv[ev.ID] = true
				evs = append(evs, ev)
			}
		}
		if lr.NextPage == nil || *lr.NextPage == "" || len(lr.SideConversations) == 0 {
			return scs, evs, nil
		}
		next, err := c.nextPage(*lr.NextPage, q)
		if err != nil {
			return nil, nil, fmt.Errorf("zendesk: list side conversations of ticket %d: %w", ticketID, err)
		}
		if visited[next.String()] {
			return nil, nil, fmt.Errorf("zendesk: list side conversations of ticket %d: next_page repeats %s", ticketID, next.Path)
		}
		u = next
	}
}

// nextPage resolves a next_page URL. It must point at the same scheme and
// host as BaseURL: the credentials are never sent elsewhere. Parameters of
// keep that next_page lacks are added.
func (c *Client) nextPage(raw string, keep url.Values) (*url.URL, error) {
	ref, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("bad next_page: %w", err)
	}
	u := c.baseURL.ResolveReference(ref)
	if !strings.EqualFold(u.Scheme, c.baseURL.Scheme) || !strings.EqualFold(u.Host, c.baseURL.Host) {
		return nil, fmt.Errorf("next_page points at another host (%s://%s)", u.Scheme, u.Host)
	}
	u.User = nil
	q := u.Query()
	for k, v := range keep {
		if k != "page" && q.Get(k) == "" {
			q[k] = v
		}
	}
	u.RawQuery = q.Encode()
	return u, nil
}

// ShowSideConversation returns one side conversation with its events:
// GET /api/v2/tickets/{ticketID}/side_conversations/{id}?include=events.
func (c *Client) ShowSideConversation(ctx context.Context, ticketID int64, id string) (*ShowResponse, error) {
	if err := checkTicketID("show side conversation", ticketID); err != nil {
		return nil, err
	}
	if id == "" {
		return nil, errors.New("zendesk: show side conversation: empty id")
	}
	u := c.url(ticketPath(ticketID)+"/side_conversations/"+url.PathEscape(id), url.Values{"include": {"events"}})
	var out ShowResponse
	if err := c.doJSON(ctx, KindShow, http.MethodGet, u, false, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetTicket returns a ticket: GET /api/v2/tickets/{id}.
func (c *Client) GetTicket(ctx context.Context, id int64) (*Ticket, error) {
	if err := checkTicketID("get ticket", id); err != nil {
		return nil, err
	}
	var out struct {
		Ticket *Ticket `json:"ticket"`
	}
	u := c.url(ticketPath(id), nil)
	if err := c.doJSON(ctx, KindTicket, http.MethodGet, u, false, nil, &out); err != nil {
		return nil, err
	}
	if out.Ticket == nil {
		return nil, &RequestError{Method: http.MethodGet, Path: u.Path, Sent: true, Status: http.StatusOK,
			Err: errors.New("response has no ticket")}
	}
	return out.Ticket, nil
}

// TicketsByExternalID returns every ticket with the external id (external
// ids are not unique): GET /api/v2/tickets?external_id=X, all pages.
func (c *Client) TicketsByExternalID(ctx context.Context, externalID string) ([]Ticket, error) {
	if externalID == "" {
		return nil, errors.New("zendesk: tickets by external id: empty external id")
	}
	q := url.Values{"external_id": {externalID}}
	u := c.url("/api/v2/tickets", q)
	var tickets []Ticket
	visited := map[string]bool{}
	for page := 0; ; page++ {
		if page >= maxPages {
			return nil, fmt.Errorf("zendesk: tickets by external id: more than %d pages", maxPages)
		}
		visited[u.String()] = true
		var out struct {
			Tickets  []Ticket `json:"tickets"`
			NextPage *string  `json:"next_page"`
		}
		if err := c.doJSON(ctx, KindTicketSearch, http.MethodGet, u, false, nil, &out); err != nil {
			return nil, err
		}
		tickets = append(tickets, out.Tickets...)
		if out.NextPage == nil || *out.NextPage == "" || len(out.Tickets) == 0 {
			return tickets, nil
		}
		next, err := c.nextPage(*out.NextPage, q)
		if err != nil {
			return nil, fmt.Errorf("zendesk: tickets by external id: %w", err)
		}
		if visited[next.String()] {
			return nil, fmt.Errorf("zendesk: tickets by external id: next_page repeats %s", next.Path)
		}
		u = next
	}
}

// UploadAttachment uploads a file for a later import's attachment_ids:
// POST /api/v2/tickets/side_conversations/attachments, multipart part
// "file". body is streamed (never held in memory), so a failed upload needs
// a fresh reader to be tried again. The id is read from the top level or
// from "attachment". Options.Timeout covers the whole upload: raise it for
// large files on slow links.
func (c *Client) UploadAttachment(ctx context.Context, fileName, contentType string, body io.Reader) (*AttachmentInfo, error) {
	if body == nil {
		return nil, errors.New("zendesk: upload attachment: nil body")
	}
	if fileName == "" {
		fileName = "attachment"
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	done := make(chan struct{})
	go func() {
		defer close(done)
		h := make(textproto.MIMEHeader)
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename="%s"`, escapeQuotes(fileName)))
		h.Set("Content-Type", contentType)
		part, err := mw.CreatePart(h)
		if err == nil {
			_, err = io.Copy(part, body)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err) // nil: EOF for the reader
	}()
	u := c.url("/api/v2/tickets/side_conversations/attachments", nil)
	var raw struct {
		Attachment *AttachmentInfo `json:"attachment"`
		Upload     *struct {
			Attachment *AttachmentInfo `json:"attachment"`
		} `json:"upload"`
	}
	var top AttachmentInfo
	out := &twoWay{a: &raw, b: &top}
	err := c.do(ctx, call{kind: KindUpload, method: http.MethodPost, u: u, write: true, body: pr,
		contentType: mw.FormDataContentType()}, out)
	// The transport closes the body; make sure of it so the writer ends.
	pr.CloseWithError(errors.New("upload finished"))
	<-done
	if err != nil {
		return nil, err
	}
	var info *AttachmentInfo
	switch {
	case raw.Attachment != nil && raw.Attachment.ID != "":
		info = raw.Attachment
	case raw.Upload != nil && raw.Upload.Attachment != nil && raw.Upload.Attachment.ID != "":
		info = raw.Upload.Attachment
	case top.ID != "":
		info = &top
	default:
		return nil, &RequestError{Method: http.MethodPost, Path: u.Path, Sent: true, Status: http.StatusCreated,
			Err: errors.New("response has no attachment id")}
	}
	return info, nil
}

func escapeQuotes(s string) string {
	return strings.NewReplacer("\\", "\\\\", `"`, "\\\"", "\r", "", "\n", "").Replace(s)
}

// twoWay decodes one JSON body into two targets.
type twoWay struct{ a, b any }

func (t *twoWay) UnmarshalJSON(b []byte) error {
	if err := jsonUnmarshal(b, t.a); err != nil {
		return err
	}
	return jsonUnmarshal(b, t.b)
}

package zendesktest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/threadlift/threadlift/zendesk"
)

const (
	patList         = "GET /api/v2/tickets/{ticket_id}/side_conversations"
	patCreate       = "POST /api/v2/tickets/{ticket_id}/side_conversations"
	patImport       = "POST /api/v2/tickets/{ticket_id}/side_conversations/import"
	patShow         = "GET /api/v2/tickets/{ticket_id}/side_conversations/{sc_id}"
	patUpdate       = "PUT /api/v2/tickets/{ticket_id}/side_conversations/{sc_id}"
	patReply        = "POST /api/v2/tickets/{ticket_id}/side_conversations/{sc_id}/reply"
	patEventsImport = "POST /api/v2/tickets/{ticket_id}/side_conversations/{sc_id}/events/import"
	patEvents       = "GET /api/v2/tickets/{ticket_id}/side_conversations/{sc_id}/events"
	patUpload       = "POST /api/v2/tickets/side_conversations/attachments"
	patTicket       = "GET /api/v2/tickets/{ticket_id}"
	patTickets      = "GET /api/v2/tickets"
	patShowMany     = "GET /api/v2/tickets/show_many"
	patMe           = "GET /api/v2/users/me"
)

var patternKinds = map[string]string{
	patList: "list", patCreate: "create", patImport: "import", patShow: "show", patUpdate: "update",
	patReply: "reply", patEventsImport: "events_import", patEvents: "events", patUpload: "upload",
	patTicket: "ticket", patTickets: "ticket_search",
	patShowMany: "ticket_show_many", patMe: "user",
}

func (f *Fake) routes() {
	m := http.NewServeMux()
	m.HandleFunc(patList, f.handleList)
	m.HandleFunc(patCreate, f.handleCreate)
	m.HandleFunc(patImport, f.handleImport)
	m.HandleFunc(patShow, f.handleShow)
	m.HandleFunc(patUpdate, f.handleUpdate)
	m.HandleFunc(patReply, f.handleReply)
	m.HandleFunc(patEventsImport, f.handleEventsImport)
	m.HandleFunc(patEvents, f.handleEvents)
	m.HandleFunc(patUpload, f.handleUpload)
	m.HandleFunc(patTicket, f.handleTicket)
	m.HandleFunc(patTickets, f.handleTickets)
	m.HandleFunc(patShowMany, f.handleShowMany)
	m.HandleFunc(patMe, f.handleMe)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "InvalidEndpoint", "description": "Not found"})
	})
	f.mux = m
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"InternalServerError"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeText(w http.ResponseWriter, status int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, s)
}

func notFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, map[string]any{"error": "RecordNotFound", "description": "Not found"})
}

func badRequest(w http.ResponseWriter, desc string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": "BadRequest", "description": desc})
}

func recordInvalid(w http.ResponseWriter, v *validator) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
		"error":       "RecordInvalid",
		"description": "Record validation errors",
		"details":     v.details,
	})
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// readObject reads a JSON object body (numbers as json.Number). It writes
// the error response and returns false on failure.
func (f *Fake) readObject(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	var body io.Reader = r.Body
	if f.cfg.MaxBodyBytes > 0 {
		body = http.MaxBytesReader(w, r.Body, f.cfg.MaxBodyBytes)
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"error": "RequestEntityTooLarge",
				"description": fmt.Sprintf("Request body larger than %d bytes", f.cfg.MaxBodyBytes)})
			return nil, false
		}
		badRequest(w, "Could not read body: "+err.Error())
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		badRequest(w, "Malformed JSON: "+err.Error())
		return nil, false
	}
	if dec.More() {
		badRequest(w, "Malformed JSON: data after the top-level value")
		return nil, false
	}
	obj, ok := x.(map[string]any)
	if !ok {
		badRequest(w, "Malformed JSON: the body must be an object")
		return nil, false
	}
	return obj, true
}

// pathTicket resolves {ticket_id}; it writes 404 and returns nil if the
// ticket does not exist. Called with f.mu held.
func (f *Fake) pathTicketLocked(w http.ResponseWriter, r *http.Request) *ticket {
	id, err := strconv.ParseInt(r.PathValue("ticket_id"), 10, 64)
	if err != nil || id <= 0 {
		notFound(w)
		return nil
	}
	t := f.ticketLocked(id, false)
	if t == nil {
		notFound(w)
	}
	return t
}

// pathConvLocked resolves {ticket_id} and {sc_id}.
func (f *Fake) pathConvLocked(w http.ResponseWriter, r *http.Request) (*ticket, *Conversation) {
	t := f.pathTicketLocked(w, r)
	if t == nil {
		return nil, nil
	}
	c := f.byID[r.PathValue("sc_id")]
	if c == nil || c.TicketID != t.id {
		notFound(w)
		return nil, nil
	}
	return t, c
}

func (f *Fake) attachmentLocked(id string) (zendesk.AttachmentInfo, bool) {
	a, ok := f.attachments[id]
	if !ok {
		return zendesk.AttachmentInfo{}, false
	}
	return a.AttachmentInfo, true
}

func (f *Fake) setWarn(w http.ResponseWriter, v *validator) {
	if s := v.apiWarn(); s != "" {
		w.Header().Set("X-Zendesk-API-Warn", s)
	}
}

func (f *Fake) tooManyEvents(w http.ResponseWriter, obj map[string]any) bool {
	if f.cfg.MaxEventsPerRequest <= 0 {
		return false
	}
	if arr, ok := obj["events"].([]any); ok && len(arr) > f.cfg.MaxEventsPerRequest {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"error": "RequestEntityTooLarge",
			"description": fmt.Sprintf("Too many events: %d, at most %d", len(arr), f.cfg.MaxEventsPerRequest)})
		return true
	}
	return false
}

func (f *Fake) handleImport(w http.ResponseWriter, r *http.Request) {
	obj, ok := f.readObject(w, r)
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.pathTicketLocked(w, r)
	if t == nil || f.tooManyEvents(w, obj) {
		return
	}
	v := newValidator(f.now(), f.attachmentLocked)
	v.checkKeys(obj, importKeys, "")
	sc := v.sideConversation(obj["side_conversation"], "side_conversation")
	evs := v.events(obj["events"], "events")
	f.setWarn(w, v)
	if !v.ok() {
		recordInvalid(w, v)
		return
	}
	c := f.newConversationLocked(r, t, sc.subject, sc.state, sc.externalIDs)
	added := f.appendEventsLocked(c, evs, true)
	f.importResponse(w, r, http.StatusCreated, c, added)
}

func (f *Fake) handleEventsImport(w http.ResponseWriter, r *http.Request) {
	obj, ok := f.readObject(w, r)
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	_, c := f.pathConvLocked(w, r)
	if c == nil || f.tooManyEvents(w, obj) {
		return
	}
	v := newValidator(f.now(), f.attachmentLocked)
	v.checkKeys(obj, eventsKeys, "")
	evs := v.events(obj["events"], "events")
	f.setWarn(w, v)
	if !v.ok() {
		recordInvalid(w, v)
		return
	}
	added := f.appendEventsLocked(c, evs, false)
	f.importResponse(w, r, http.StatusCreated, c, added)
}

func (f *Fake) handleCreate(w http.ResponseWriter, r *http.Request) {
	obj, ok := f.readObject(w, r)
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.pathTicketLocked(w, r)
	if t == nil {
		return
	}
	now := f.now()
	v := newValidator(now, f.attachmentLocked)
	v.checkKeys(obj, createKeys, "")
	msg := v.message(obj["message"], "message")
	ext := v.externalIDs(obj["external_ids"], "external_ids")
	f.setWarn(w, v)
	if !v.ok() {
		recordInvalid(w, v)
		return
	}
	c := f.newConversationLocked(r, t, msg.subject, "open", ext)
	added := f.appendEventsLocked(c, []parsedEvent{{createdAt: now.UTC(), msg: msg}}, true)
	f.importResponse(w, r, http.StatusCreated, c, added)
}

func (f *Fake) handleReply(w http.ResponseWriter, r *http.Request) {
	obj, ok := f.readObject(w, r)
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	_, c := f.pathConvLocked(w, r)
	if c == nil {
		return
	}
	now := f.now()
	v := newValidator(now, f.attachmentLocked)
	v.checkKeys(obj, replyKeys, "")
	msg := v.message(obj["message"], "message")
	f.setWarn(w, v)
	if !v.ok() {
		recordInvalid(w, v)
		return
	}
	added := f.appendEventsLocked(c, []parsedEvent{{createdAt: now.UTC(), msg: msg}}, false)
	f.importResponse(w, r, http.StatusOK, c, added)
}

func (f *Fake) handleUpdate(w http.ResponseWriter, r *http.Request) {
	obj, ok := f.readObject(w, r)
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	_, c := f.pathConvLocked(w, r)
	if c == nil {
		return
	}
	v := newValidator(f.now(), f.attachmentLocked)
	v.checkKeys(obj, updateKeys, "")
	sc, isObj := obj["side_conversation"].(map[string]any)
	if !isObj {
		v.fail("side_conversation", "InvalidValue", "side_conversation must be an object")
	}
	v.checkKeys(sc, keySet("subject", "state"), "side_conversation")
	state := v.state(sc["state"], "side_conversation.state")
	subject, hasSubject := sc["subject"].(string)
	if _, present := sc["subject"]; present && (!hasSubject || strings.TrimSpace(subject) == "") {
		v.fail("side_conversation.subject", "BlankValue", "Subject: cannot be blank")
	}
	f.setWarn(w, v)
	if !v.ok() {
		recordInvalid(w, v)
		return
	}
	now := f.now().UTC()
	if state != "" && state != c.State {
		c.State, c.StateUpdatedAt = state, now
	}
	if hasSubject {
		c.Subject = subject
	}
	c.UpdatedAt = now
	writeJSON(w, http.StatusOK, map[string]any{"side_conversation": c.SideConversation})
}

func (f *Fake) handleShow(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, c := f.pathConvLocked(w, r)
	if c == nil {
		return
	}
	resp := map[string]any{"side_conversation": c.SideConversation}
	if includes(r, "events") {
		resp["events"] = nonNil(c.Events)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (f *Fake) handleEvents(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, c := f.pathConvLocked(w, r)
	if c == nil {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": nonNil(c.Events), "next_page": nil, "previous_page": nil, "count": len(c.Events)})
}

func (f *Fake) handleList(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.pathTicketLocked(w, r)
	if t == nil {
		return
	}
	page, perPage := paging(r)
	lo, hi := bounds(len(t.convs), page, perPage)
	scs := make([]zendesk.SideConversation, 0, hi-lo)
	events := []zendesk.Event{}
	for _, c := range t.convs[lo:hi] {
		scs = append(scs, c.SideConversation)
		events = append(events, c.Events...)
	}
	resp := map[string]any{
		"side_conversations": scs,
		"count":              len(t.convs),
		"next_page":          pageURL(r, page+1, perPage, hi < len(t.convs)),
		"previous_page":      pageURL(r, page-1, perPage, page > 1),
	}
	if includes(r, "events") {
		resp["events"] = events
	}
	writeJSON(w, http.StatusOK, resp)
}

func (f *Fake) handleTicket(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.pathTicketLocked(w, r)
	if t == nil {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ticket": ticketJSON(r, t)})
}

func (f *Fake) handleTickets(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ext, filter := r.URL.Query()["external_id"]
	var match []*ticket
	for _, id := range sortedIDs(f.tickets) {
		t := f.tickets[id]
		if !filter || (len(ext) > 0 && t.externalID == ext[0] && t.externalID != "") {
			match = append(match, t)
		}
	}
	page, perPage := paging(r)
	lo, hi := bounds(len(match), page, perPage)
	out := make([]map[string]any, 0, hi-lo)
	for _, t := range match[lo:hi] {
		out = append(out, ticketJSON(r, t))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"tickets":       out,
		"count":         len(match),
		"next_page":     pageURL(r, page+1, perPage, hi < len(match)),
		"previous_page": pageURL(r, page-1, perPage, page > 1),
	})
}

func (f *Fake) handleUpload(w http.ResponseWriter, r *http.Request) {
	// Drain whatever is left so the client reads our answer instead of
	// failing to write the rest of its body.
	defer func() { _, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<30)) }()
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") {
		badRequest(w, "Expected a multipart/form-data body with a part named file")
		return
	}
	mr, err := r.MultipartReader()
	if err != nil {
		badRequest(w, "Malformed multipart body: "+err.Error())
		return
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			badRequest(w, "Malformed multipart body: "+err.Error())
			return
		}
		if part.FormName() != "file" {
			continue
		}
		f.storeUpload(w, r, part)
		return
	}
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
		"error": "RecordInvalid", "description": "Record validation errors",
		"details": map[string][]detail{"file": {{Description: "File: cannot be blank", Error: "BlankValue"}}},
	})
}

// storeUpload stores the file of an upload (part) and answers with its
// attachment, or refuses it: too large, a control character in its name,
// a content type not allowed.
func (f *Fake) storeUpload(w http.ResponseWriter, r *http.Request, part *multipart.Part) {
	h := sha256.New()
	max := f.cfg.MaxAttachmentBytes
	n, err := io.Copy(h, io.LimitReader(part, max+1))
	if err != nil {
		badRequest(w, "Could not read the file: "+err.Error())
		return
	}
	if n > max {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"error": "AttachmentTooLarge",
			"description": fmt.Sprintf("Attachment larger than %d bytes", max)})
		return
	}
	name := part.FileName()
	if name == "" {
		name = r.URL.Query().Get("filename")
	}
	if name == "" {
		name = "attachment"
	}
	if strings.IndexFunc(name, unicode.IsControl) >= 0 {
		// The API answers 400 to a NUL or another control character in
		// the file name (issue 11).
		badRequest(w, "File name contains control characters")
		return
	}
	ct := part.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/octet-stream"
	}
	if !typeAllowed(f.cfg.AllowedAttachmentTypes, ct) {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
			"error": "RecordInvalid", "description": "Record validation errors",
			"details": map[string][]detail{"file": {{Description: "File: content type " + ct + " is not allowed", Error: "InvalidValue"}}},
		})
		return
	}
	id := "att-" + uuid.NewString()
	a := &Attachment{
		AttachmentInfo: zendesk.AttachmentInfo{
			ID: id, Name: name, FileName: name, ContentType: ct, Size: n,
			ContentURL: baseURL(r) + "/attachments/token/" + id + "/?name=" + url.QueryEscape(name),
		},
		SHA256: hex.EncodeToString(h.Sum(nil)),
	}
	f.mu.Lock()
	f.attachments[id] = a
	f.mu.Unlock()
	if f.cfg.AttachmentTopLevel {
		writeJSON(w, http.StatusCreated, a.AttachmentInfo)
	} else {
		writeJSON(w, http.StatusCreated, map[string]any{"attachment": a.AttachmentInfo})
	}
}

// newConversationLocked creates and stores an empty side conversation.
func (f *Fake) newConversationLocked(r *http.Request, t *ticket, subject, state string, ext map[string]string) *Conversation {
	now := f.now().UTC()
	id := uuid.NewString()
	c := &Conversation{SideConversation: zendesk.SideConversation{
		ID:             id,
		TicketID:       t.id,
		Subject:        subject,
		State:          state,
		ExternalIDs:    ext,
		URL:            fmt.Sprintf("%s/api/v2/tickets/%d/side_conversations/%s", baseURL(r), t.id, id),
		CreatedAt:      now,
		UpdatedAt:      now,
		StateUpdatedAt: now,
		MessageAddedAt: now,
	}}
	t.convs = append(t.convs, c)
	f.byID[id] = c
	return c
}

// appendEventsLocked stores events on c and returns them. The first event
// of a new side conversation is of type "create", the others "reply".
func (f *Fake) appendEventsLocked(c *Conversation, evs []parsedEvent, fresh bool) []zendesk.Event {
	added := make([]zendesk.Event, 0, len(evs))
	for i, pe := range evs {
		typ := "reply"
		if fresh && i == 0 {
			typ = "create"
			c.CreatedAt = pe.createdAt.UTC()
		}
		m := pe.msg
		preview := m.body
		if preview == "" {
			preview = m.subject
		}
		if len(preview) > 100 {
			preview = preview[:100]
		}
		ev := zendesk.Event{
			ID:                 uuid.NewString(),
			SideConversationID: c.ID,
			Type:               typ,
			Via:                "api",
			CreatedAt:          pe.createdAt,
			Actor:              m.from,
			Message: &zendesk.EventMessage{
				Subject:     m.subject,
				Body:        m.body,
				HTMLBody:    m.htmlBody,
				PreviewText: preview,
				From:        m.from,
				To:          m.to,
				ExternalIDs: m.externalIDs,
				Attachments: m.attachments,
			},
		}
		c.Events = append(c.Events, ev)
		added = append(added, cloneEvent(ev))
		if c.PreviewText == "" {
			c.PreviewText = preview
		}
		if pe.createdAt.After(c.MessageAddedAt) || (fresh && i == 0) {
			c.MessageAddedAt = pe.createdAt.UTC()
		}
		if m.from != nil {
			c.Participants = addParticipant(c.Participants, *m.from)
		}
		for _, p := range m.to {
			c.Participants = addParticipant(c.Participants, p)
		}
	}
	c.UpdatedAt = f.now().UTC()
	return added
}

func addParticipant(ps []zendesk.Participant, p zendesk.Participant) []zendesk.Participant {
	for _, q := range ps {
		if q == p {
			return ps
		}
	}
	return append(ps, p)
}

func (f *Fake) importResponse(w http.ResponseWriter, r *http.Request, status int, c *Conversation, added []zendesk.Event) {
	var first *zendesk.Event
	if len(added) > 0 {
		first = &added[0]
	}
	// A struct rather than a map: the same JSON (fields in the map's sorted
	// key order), without sorting keys at every response.
	writeJSON(w, status, struct {
		Event            *zendesk.Event           `json:"event"`
		Events           []zendesk.Event          `json:"events"`
		SideConversation zendesk.SideConversation `json:"side_conversation"`
		Updates          struct{}                 `json:"updates"`
	}{first, added, c.SideConversation, struct{}{}})
}

func ticketJSON(r *http.Request, t *ticket) map[string]any {
	var ext any
	if t.externalID != "" {
		ext = t.externalID
	}
	return map[string]any{
		"id":          t.id,
		"external_id": ext,
		"subject":     fmt.Sprintf("Ticket %d", t.id),
		"status":      "open",
		"url":         fmt.Sprintf("%s/api/v2/tickets/%d.json", baseURL(r), t.id),
		"created_at":  t.createdAt.Format(time.RFC3339),
		"updated_at":  t.createdAt.Format(time.RFC3339),
	}
}

func includes(r *http.Request, what string) bool {
	for _, v := range r.URL.Query()["include"] {
		for _, s := range strings.Split(v, ",") {
			if strings.TrimSpace(s) == what {
				return true
			}
		}
	}
	return false
}

func paging(r *http.Request) (page, perPage int) {
	q := r.URL.Query()
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page < 1 {
		page = 1
	}
	perPage, err = strconv.Atoi(q.Get("per_page"))
	if err != nil || perPage < 1 || perPage > 100 {
		perPage = 100
	}
	return page, perPage
}

func bounds(n, page, perPage int) (lo, hi int) {
	lo = min((page-1)*perPage, n)
	hi = min(lo+perPage, n)
	return lo, hi
}

// pageURL is an absolute next/previous page URL (with .json, as Zendesk
// writes them), or nil.
func pageURL(r *http.Request, page, perPage int, ok bool) any {
	if !ok {
		return nil
	}
	q := url.Values{}
	for k, v := range r.URL.Query() {
		q[k] = v
	}
	q.Set("page", strconv.Itoa(page))
	q.Set("per_page", strconv.Itoa(perPage))
	return baseURL(r) + r.URL.Path + ".json?" + q.Encode()
}

func nonNil(evs []zendesk.Event) []zendesk.Event {
	if evs == nil {
		return []zendesk.Event{}
	}
	return evs
}

func sortedIDs(m map[int64]*ticket) []int64 {
	ids := make([]int64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// typeAllowed reports whether a content type is in the allowed list (exact
// media types or "type/*" prefixes); an empty list allows everything.
func typeAllowed(allowed []string, ct string) bool {
	if len(allowed) == 0 {
		return true
	}
	mt := strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
	for _, a := range allowed {
		a = strings.ToLower(a)
		if a == mt || strings.HasSuffix(a, "/*") && strings.HasPrefix(mt, strings.TrimSuffix(a, "*")) {
			return true
		}
	}
	return false
}

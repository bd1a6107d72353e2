package csv

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/internal/addr"
	"github.com/threadlift/threadlift/sources/internal/files"
)

// The csv reader.
//
// Rows are split by our own scanner and decoded by encoding/csv
// (FieldsPerRecord -1, LazyQuotes false, no comments), one row at a time:
//   - encoding/csv buffers a whole record before it can report anything,
//     so a quote that is never closed made it hold everything up to the end
//     of the file in memory and then lose all those rows in one error. Our
//     scanner follows encoding/csv's quoting rules exactly (FuzzCSV checks
//     it against encoding/csv) but keeps at most MaxMessageBytes of a row,
//     knows the byte offset and line where each row starts and ends (in
//     file coordinates, after a byte-order mark), and resynchronizes after
//     a quoting error.
//   - Every row is then handed to encoding/csv on its own, in Next (to build
//     the envelope; bodies are dropped) and again in Load (ReadAt of the
//     row's bytes), so both see exactly the same fields.
//
// Rules:
//   - The first row that is not a blank line is the header; it is required
//     unless the file holds nothing but blank lines (an empty source: Next
//     ends at once). Header names are matched case-insensitively after trimming spaces,
//     against Options.Fields (default name → name in the file). A header
//     that lacks a column for thread_id, created_at, from, to, or both body
//     and html_body is a fatal error for the file (ErrHeader), as is an
//     unreadable header. Extra columns are ignored.
//   - Blank lines between rows are skipped (as encoding/csv does).
//   - A row that cannot be read is a *RecordError (Next goes on with the
//     next row): "wrong-column-count", "unterminated-quote" (a quoted field
//     still open at the end of the file), "bad-quote" (a '"' inside an
//     unquoted field, or a closing '"' followed by something other than a
//     comma or the end of the line), "too-large" (a row over
//     MaxMessageBytes: it is not buffered, so its fields are unknown) and
//     "not-utf8" when thread_id or message_id is not valid UTF-8. After a
//     quoting error, reading goes on at the line after the one where the
//     bad row started: a stray quote must not swallow the rows after it.
//   - A row with bytes that are not valid UTF-8 elsewhere is rejected with
//     an error Issue "not-utf8" (it still belongs to its thread; the
//     invalid bytes are shown as U+FFFD). Re-save the file as UTF-8.
//   - Field rules are the shared record rules (sources.Record). Attachments are
//     ';'-separated paths relative to the csv file's folder; a path that
//     leaves the folder is an error Issue "attachment-path", a file that
//     does not exist (or is not a regular file) an error Issue
//     "attachment-missing".

// Rules of the records a csv reader cannot read (sources.RecordError),
// besides sources.RuleTooLarge. RuleNotUTF8 is also the rule of the error
// Issue of a row with bytes that are not UTF-8 elsewhere.
const (
	RuleUnterminatedQuote sources.Rule = "unterminated-quote"
	RuleBadQuote          sources.Rule = "bad-quote"
	RuleWrongColumnCount  sources.Rule = "wrong-column-count"
	RuleNotUTF8           sources.Rule = "not-utf8"
)

// ErrHeader is wrapped by the error Open returns for a csv file
// without a usable header row (missing, unreadable, or lacking a
// required column).
var ErrHeader = errors.New("unusable csv header")

const excerptBytes = 80 // longest row excerpt in a RecordError

// csvFields lists the default field names in the order of contract §3.
var csvFields = [...]string{sources.FieldThreadID, sources.FieldMessageID, sources.FieldTicketID, sources.FieldCreatedAt, sources.FieldFrom,
	sources.FieldTo, sources.FieldCc, sources.FieldSubject, sources.FieldBody, sources.FieldHTMLBody, sources.FieldAttachments}

// Format describes the csv format for a sources.Registry: csv files, one
// message per row.
func Format() sources.Format { return sources.Format{Name: "csv", Open: Open, Records: true} }

// Open opens a csv source (contract §3) and reads its header. Next
// streams the rows once; Load re-reads one row with ReadAt and is safe for
// concurrent use.
func Open(path string, opts sources.Options) (sources.Reader, error) {
	opts = opts.WithDefaults(path)
	for f := range opts.Fields {
		known := false
		for _, k := range csvFields {
			known = known || k == f
		}
		if !known {
			return nil, fmt.Errorf("open csv %s: unknown field %q in fields; the fields are %s", opts.Name, f, strings.Join(csvFields[:], ", "))
		}
	}
	f, st, err := files.Open(path, "csv")
	if err != nil {
		return nil, err
	}
	dir, err := files.FolderOf(path)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open csv %s: %w", path, err)
	}
	r, err := newReader(f, st.Size(), f, dir, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

var (
	_ sources.Reader           = (*reader)(nil)
	_ sources.RawReader        = (*reader)(nil)
	_ sources.AttachmentReader = (*reader)(nil)
)

type reader struct {
	ra     io.ReaderAt
	size   int64
	closer io.Closer
	opts   sources.Options
	dir    files.Folder // the file's folder: attachments are relative to it and may not leave it

	// Set by the header; read-only afterwards.
	cols  map[string]int // default field name → column index
	ncols int
	// The header row's span in the file, and the columns of a failures
	// file's marks (sources.MarkSourceField); -1 when absent.
	headerStart, headerEnd int64
	markCol, keyCol        int

	// Next's state; Next is not safe for concurrent use.
	sc     rowScanner
	seq    int
	done   bool
	err    error // sticky I/O error
	closed atomic.Bool

	bufs sync.Pool // *bufio.Reader for encoding/csv
}

func newReader(ra io.ReaderAt, size int64, closer io.Closer, dir files.Folder, opts sources.Options) (*reader, error) {
	r := &reader{ra: ra, size: size, closer: closer, opts: opts, dir: dir}
	r.sc.init(ra, size, opts.MaxMessageBytes)
	if err := r.readHeader(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *reader) readHeader() error {
	name := r.opts.Name
	row, err := r.sc.next()
	if err == io.EOF {
		// An empty file: no rows, which the caller reports as an empty
		// source (RuleEmptySource), not a broken one.
		r.done = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("open csv %s: %w", name, err)
	}
	loc := sources.Location{File: name, Line: row.line, Offset: row.start}
	switch {
	case row.quote != quoteOK:
		row.resume = -1 // fatal: nothing is read again
		return fmt.Errorf("open csv %s: %w: header row: %v", loc, ErrHeader, row.quoteError())
	case row.over:
		return fmt.Errorf("open csv %s: %w: header row is over %d bytes", loc, ErrHeader, r.opts.MaxMessageBytes)
	case !utf8.Valid(row.data):
		return fmt.Errorf("open csv %s: %w: header row is not valid UTF-8 (%s); save the file as UTF-8", loc, ErrHeader, row.invalidUTF8())
	}
	names, err := r.parseRow(row.data)
	if err != nil {
		return fmt.Errorf("open csv %s: %w: header row: %v", loc, ErrHeader, err)
	}
	index := make(map[string][]int)
	for i, n := range names {
		k := strings.ToLower(strings.TrimSpace(n))
		index[k] = append(index[k], i)
	}
	r.ncols = len(names)
	r.headerStart, r.headerEnd = row.start, row.end
	r.markCol, r.keyCol = -1, -1
	if at := index[sources.MarkSourceField]; len(at) == 1 {
		r.markCol = at[0]
	}
	if at := index[sources.MarkKeyField]; len(at) == 1 {
		r.keyCol = at[0]
	}
	r.cols = make(map[string]int)
	var missing []string
	for _, f := range csvFields {
		col := r.opts.FieldName(f)
		at := index[strings.ToLower(strings.TrimSpace(col))]
		switch {
		case len(at) > 1:
			return fmt.Errorf("open csv %s: %w: column %q (field %s) appears %d times in the header (columns %s)",
				loc, ErrHeader, col, f, len(at), joinInts(at))
		case len(at) == 1:
			r.cols[f] = at[0]
		case f == sources.FieldThreadID, f == sources.FieldCreatedAt, f == sources.FieldFrom, f == sources.FieldTo:
			missing = append(missing, describeField(f, col))
		}
	}
	_, body := r.cols[sources.FieldBody]
	_, html := r.cols[sources.FieldHTMLBody]
	if !body && !html {
		missing = append(missing, describeField(sources.FieldBody, r.opts.FieldName(sources.FieldBody))+" or "+
			describeField(sources.FieldHTMLBody, r.opts.FieldName(sources.FieldHTMLBody)))
	}
	if len(missing) > 0 {
		return fmt.Errorf("open csv %s: %w: no column for required field(s) %s; the header is %q",
			loc, ErrHeader, strings.Join(missing, ", "), excerpt(row.data))
	}
	return nil
}

func describeField(f, col string) string {
	if f == col {
		return f
	}
	return fmt.Sprintf("%s (column %q)", f, col)
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x + 1)
	}
	return strings.Join(s, ", ")
}

// Close closes the file. Next and Load fail afterwards.
func (r *reader) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	if r.closer != nil {
		return r.closer.Close()
	}
	return nil
}

// Next returns the envelope of the next row, a *RecordError for a row that
// cannot be read, or io.EOF.
func (r *reader) Next() (*sources.Envelope, error) {
	if r.closed.Load() {
		return nil, sources.ErrClosed
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.done {
		return nil, io.EOF
	}
	row, err := r.sc.next()
	if err == io.EOF {
		r.done = true
		return nil, io.EOF
	}
	if err != nil {
		r.err = fmt.Errorf("read %s at byte %d: %w", r.opts.Name, r.sc.pos, err)
		return nil, r.err
	}
	seq := r.seq
	r.seq++
	loc := sources.Location{File: r.opts.Name, Line: row.line, Offset: row.start}
	recErr := func(rule sources.Rule, err error) (*sources.Envelope, error) {
		return nil, &sources.RecordError{Loc: loc, Rule: rule, Err: err, Size: row.end - row.start}
	}
	switch {
	case row.quote == quoteUnterminated:
		return recErr(RuleUnterminatedQuote, row.quoteError())
	case row.quote != quoteOK:
		return recErr(RuleBadQuote, row.quoteError())
	case row.over:
		return recErr(sources.RuleTooLarge, fmt.Errorf("row is %d bytes (lines %d-%d), over max_message_bytes %d; it was not read; row: %q",
			row.end-row.start, row.line, row.endLine, r.opts.MaxMessageBytes, excerpt(row.data)))
	}
	fields, err := r.parseRow(row.data)
	if err != nil {
		// Cannot happen while the scanner agrees with encoding/csv.
		return recErr(RuleBadQuote, fmt.Errorf("%w; row: %q", err, excerpt(row.data)))
	}
	if len(fields) != r.ncols {
		return recErr(RuleWrongColumnCount, fmt.Errorf("%w: row has %d fields, the header has %d; row: %q",
			csv.ErrFieldCount, len(fields), r.ncols, excerpt(row.data)))
	}
	cr, rerr := r.record(loc, row.data, fields)
	if rerr != nil {
		return recErr(RuleNotUTF8, rerr)
	}
	env := cr.rec.Envelope(row.end-row.start, r.opts)
	env.Seq = seq
	return env, nil
}

// parseRow decodes the bytes of one row with encoding/csv.
func (r *reader) parseRow(data []byte) ([]string, error) {
	br, _ := r.bufs.Get().(*bufio.Reader)
	if br == nil {
		br = bufio.NewReaderSize(nil, 4096)
	}
	br.Reset(bytes.NewReader(data))
	defer func() {
		br.Reset(nil)
		r.bufs.Put(br)
	}()
	cr := csv.NewReader(br) // uses br as is: it is a big enough *bufio.Reader
	cr.FieldsPerRecord = -1
	fields, err := cr.Read()
	if err == io.EOF {
		return nil, errors.New("empty row")
	}
	if err != nil {
		return nil, err
	}
	if _, err := cr.Read(); err != io.EOF {
		return nil, errors.New("row splits into more than one record")
	}
	return fields, nil
}

// csvRow is a decoded row: the shared record plus the resolved attachments.
type csvRow struct {
	rec  sources.Record
	atts []sources.Attachment
}

// record builds the shared record of a row. It returns an error for a
// row whose thread_id or message_id is not valid UTF-8.
func (r *reader) record(loc sources.Location, raw []byte, fields []string) (*csvRow, error) {
	cr := &csvRow{}
	rec := &cr.rec
	rec.Loc = loc
	if !utf8.Valid(raw) {
		var err error
		if fields, err = r.validUTF8(rec, raw, fields); err != nil {
			return nil, err
		}
	}
	get := func(f string) string {
		if i, ok := r.cols[f]; ok {
			return fields[i]
		}
		return ""
	}

	if r.markCol >= 0 {
		rec.Corrects = fields[r.markCol]
	}
	if r.keyCol >= 0 {
		rec.Key = fields[r.keyCol]
	}
	rec.ThreadID = get(sources.FieldThreadID)
	rec.MessageID = get(sources.FieldMessageID)
	rec.TicketRef = get(sources.FieldTicketID)
	rec.CreatedAt = get(sources.FieldCreatedAt)
	rec.Subject = get(sources.FieldSubject)
	rec.Body = get(sources.FieldBody)
	rec.HTMLBody = get(sources.FieldHTMLBody)
	rec.FromRaw = get(sources.FieldFrom)

	// Missing fields and issues keep this order (ids, date, sender,
	// recipients, body, attachments): reports list them in it.
	if blank(rec.ThreadID) {
		rec.Missing = append(rec.Missing, sources.FieldThreadID)
	}
	if blank(rec.CreatedAt) {
		rec.Missing = append(rec.Missing, sources.FieldCreatedAt)
	}
	readSender(rec)
	readRecipients(rec, get(sources.FieldTo), get(sources.FieldCc))
	if blank(rec.Body) && blank(rec.HTMLBody) {
		f := sources.FieldBody
		if _, ok := r.cols[sources.FieldBody]; !ok {
			f = sources.FieldHTMLBody
		}
		rec.Missing = append(rec.Missing, f)
	}
	stripNULs(rec)
	r.rowAttachments(cr, get(sources.FieldAttachments))
	return cr, nil
}

// validUTF8 handles a row that is not valid UTF-8: an error when the bad
// bytes are in thread_id or message_id (the record could not be named),
// else an issue and the fields with the bad bytes replaced.
func (r *reader) validUTF8(rec *sources.Record, raw []byte, fields []string) ([]string, error) {
	bad := ""
	for _, f := range csvFields {
		if i, ok := r.cols[f]; ok && !utf8.ValidString(fields[i]) {
			bad = f
			break
		}
	}
	where := invalidUTF8At(raw, rec.Loc.Line)
	if bad == sources.FieldThreadID || bad == sources.FieldMessageID {
		return nil, fmt.Errorf("%s (%q in the file) is not valid UTF-8 (%s); save the file as UTF-8; row: %q",
			bad, r.opts.FieldName(bad), where, excerpt(raw))
	}
	what := "a column that is not read"
	if bad != "" {
		what = fmt.Sprintf("%s (%q in the file)", bad, r.opts.FieldName(bad))
	}
	rec.Issues = append(rec.Issues, sources.Issue{Severity: sources.SeverityError, Rule: string(RuleNotUTF8),
		Reason: fmt.Sprintf("row has bytes that are not valid UTF-8 (%s, in %s); save the file as UTF-8", where, what)})
	sane := make([]string, len(fields))
	for i, v := range fields {
		sane[i] = strings.ToValidUTF8(v, "\uFFFD")
	}
	return sane, nil
}

// blank reports whether a cell is empty or only white space.
func blank(s string) bool { return strings.TrimSpace(s) == "" }

// readSender parses rec.FromRaw; its first address is the sender.
func readSender(rec *sources.Record) {
	if blank(rec.FromRaw) {
		rec.Missing = append(rec.Missing, sources.FieldFrom)
		return
	}
	from, bad := addr.ParseField(rec.FromRaw)
	if len(from) == 0 {
		return
	}
	rec.From = from[:1]
	if is := addr.FieldIssue("from", bad); is != nil {
		rec.Issues = append(rec.Issues, *is)
	}
	if len(from) > 1 {
		rec.Issues = append(rec.Issues, sources.Issue{Severity: sources.SeverityWarning, Rule: "multiple-senders",
			Reason: fmt.Sprintf("from has %d addresses; the first, %s, is the sender", len(from), from[0].Email)})
	}
}

// readRecipients parses the to and cc cells; one of them must be filled.
func readRecipients(rec *sources.Record, toRaw, ccRaw string) {
	if blank(toRaw) && blank(ccRaw) {
		rec.Missing = append(rec.Missing, sources.FieldTo)
	}
	var bad []string
	rec.To, bad = addr.ParseField(toRaw)
	if is := addr.FieldIssue("to", bad); is != nil {
		rec.Issues = append(rec.Issues, *is)
	}
	rec.Cc, bad = addr.ParseField(ccRaw)
	if is := addr.FieldIssue("cc", bad); is != nil {
		rec.Issues = append(rec.Issues, *is)
	}
}

// stripNULs removes NUL bytes from the text fields (a repair with a
// warning, contract §9) and says how many went from where.
func stripNULs(rec *sources.Record) {
	var nuls []string
	for _, t := range []struct {
		name string
		v    *string
	}{{sources.FieldSubject, &rec.Subject}, {sources.FieldBody, &rec.Body}, {sources.FieldHTMLBody, &rec.HTMLBody}} {
		if n := strings.Count(*t.v, "\x00"); n > 0 {
			*t.v = strings.ReplaceAll(*t.v, "\x00", "")
			nuls = append(nuls, fmt.Sprintf("%d from %s", n, t.name))
		}
	}
	if len(nuls) > 0 {
		rec.Issues = append(rec.Issues, sources.Issue{Severity: sources.SeverityWarning, Rule: "nul-bytes", Reason: "NUL bytes removed: " + strings.Join(nuls, ", ")})
	}
}

// rowAttachments resolves the ';'-separated attachment paths of a row;
// one that cannot be used is an issue, the others are kept.
func (r *reader) rowAttachments(cr *csvRow, cell string) {
	for _, p := range strings.Split(cell, ";") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		a, is := r.attachment(p)
		if is != nil {
			cr.rec.Issues = append(cr.rec.Issues, *is)
			continue
		}
		cr.rec.Attachments = append(cr.rec.Attachments, p)
		cr.atts = append(cr.atts, a)
	}
}

// attachment resolves an attachment path against the csv file's folder.
func (r *reader) attachment(p string) (sources.Attachment, *sources.Issue) {
	real, err := r.dir.Resolve(p)
	switch {
	case errors.Is(err, files.ErrOutside):
		return sources.Attachment{}, &sources.Issue{Severity: sources.SeverityError, Rule: "attachment-path",
			Reason: fmt.Sprintf("attachment %q is outside the csv file's folder %s (%v)", clipString(p, 100), r.dir.Dir, err)}
	case err != nil:
		why := "cannot be read"
		if errors.Is(err, os.ErrNotExist) {
			why = "does not exist"
		}
		return sources.Attachment{}, &sources.Issue{Severity: sources.SeverityError, Rule: "attachment-missing", Reason: fmt.Sprintf("attachment %q (%s) %s", clipString(p, 100), real, why)}
	}
	st, err := os.Stat(real)
	switch {
	case err != nil:
		return sources.Attachment{}, &sources.Issue{Severity: sources.SeverityError, Rule: "attachment-missing", Reason: fmt.Sprintf("attachment %q (%s) cannot be read", clipString(p, 100), real)}
	case !st.Mode().IsRegular():
		return sources.Attachment{}, &sources.Issue{Severity: sources.SeverityError, Rule: "attachment-missing", Reason: fmt.Sprintf("attachment %q (%s) is not a regular file", clipString(p, 100), real)}
	}
	ct := mime.TypeByExtension(filepath.Ext(real))
	if ct == "" {
		ct = "application/octet-stream"
	}
	// The file is read by its real path: a link changed after this check
	// is not followed.
	return sources.Attachment{Path: real, Name: filepath.Base(filepath.Clean(p)), ContentType: ct, Size: st.Size()}, nil
}

// Load re-reads the row of env and returns its full message. It is safe
// for concurrent use.
func (r *reader) Load(env *sources.Envelope) (*sources.Message, error) {
	if r.closed.Load() {
		return nil, sources.ErrClosed
	}
	raw, err := r.rowBytes(env)
	if err != nil {
		return nil, err
	}
	fields, err := r.parseRow(raw)
	if err != nil {
		return nil, fmt.Errorf("load %s: the row no longer parses (did the file change?): %w", env.Loc, err)
	}
	if len(fields) != r.ncols {
		return nil, fmt.Errorf("load %s: the row has %d fields now, the header has %d (did the file change?)", env.Loc, len(fields), r.ncols)
	}
	cr, err := r.record(env.Loc, raw, fields)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", env.Loc, err)
	}
	m := cr.rec.Message(env)
	m.Attachments = cr.atts
	return m, nil
}

func (r *reader) rowBytes(env *sources.Envelope) ([]byte, error) {
	if env == nil || env.Loc.Offset < 0 || env.Size <= 0 || env.Size > r.opts.MaxMessageBytes || env.Loc.Offset+env.Size > r.size {
		return nil, fmt.Errorf("load %s: envelope is not a row of this file", r.opts.Name)
	}
	raw := make([]byte, env.Size)
	if _, err := r.ra.ReadAt(raw, env.Loc.Offset); err != nil && err != io.EOF {
		return nil, fmt.Errorf("load %s: %w", env.Loc, err)
	}
	return raw, nil
}

// Raw returns the row's bytes as they are in the file. It is safe for
// concurrent use, like Load.
func (r *reader) Raw(env *sources.Envelope) (io.Reader, error) {
	if env == nil || env.Loc.Offset < 0 || env.Size < 0 || env.Loc.Offset+env.Size > r.size {
		return nil, fmt.Errorf("raw record of %s: envelope is not a row of this file", r.opts.Name)
	}
	return io.NewSectionReader(r.ra, env.Loc.Offset, env.Size), nil
}

// excerpt returns the start of a row for error messages: its first line,
// at most excerptBytes bytes, as valid UTF-8.
func excerpt(b []byte) string {
	cut := false
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b, cut = b[:i], i+1 < len(b)
	}
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) > excerptBytes {
		b, cut = b[:excerptBytes], true
		// do not cut a UTF-8 sequence in the middle
		for k := 0; k < 3 && !utf8.Valid(b[max(0, len(b)-4):]); k++ {
			b = b[:len(b)-1]
		}
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	if cut {
		s += "…"
	}
	return s
}

// invalidUTF8At describes where the first invalid UTF-8 byte of a row is.
func invalidUTF8At(raw []byte, line int) string {
	col := 1
	for i := 0; i < len(raw); {
		c, n := utf8.DecodeRune(raw[i:])
		if c == utf8.RuneError && n <= 1 {
			return fmt.Sprintf("first bad byte 0x%02X at line %d, column %d", raw[i], line, col)
		}
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col += n
		}
		i += n
	}
	return fmt.Sprintf("line %d", line)
}

// The row scanner.

type quoteState int

const (
	quoteOK           quoteState = iota
	quoteUnterminated            // a quoted field still open at the end of the file
	quoteBare                    // a '"' in an unquoted field (csv.ErrBareQuote)
	quoteExtraneous              // a closing '"' followed by other text (csv.ErrQuote)
)

// scannedRow is one row found by the scanner.
type scannedRow struct {
	start, end    int64 // byte offsets in the file: [start, end)
	line, endLine int   // first and last line (1-based)
	data          []byte
	over          bool // larger than the limit: data holds only its start

	quote             quoteState
	errLine, errCol   int   // where the quoting error was found (the opening quote when unterminated)
	openLine, openCol int   // where the last quoted field opened
	resume            int64 // offset of the row's second line, or -1 for a row of one line
	resumeLine        int
}

func (s *scannedRow) quoteError() error {
	switch s.quote {
	case quoteUnterminated:
		return fmt.Errorf("%w: the quoted field opened at line %d, column %d is never closed (the file ends inside it)%s; row: %q",
			csv.ErrQuote, s.errLine, s.errCol, s.resumeNote(), excerpt(s.data))
	case quoteBare:
		return fmt.Errorf("%w: '\"' at line %d, column %d is inside a field that does not start with '\"' (quote the field and double the '\"')%s; row: %q",
			csv.ErrBareQuote, s.errLine, s.errCol, s.resumeNote(), excerpt(s.data))
	case quoteExtraneous:
		if s.openLine != s.errLine {
			return fmt.Errorf("%w: the quoted field opened at line %d, column %d ends at line %d, column %d with a '\"' followed by more text (a closing '\"' is missing, or a '\"' inside the field is not doubled)%s; row: %q",
				csv.ErrQuote, s.openLine, s.openCol, s.errLine, s.errCol, s.resumeNote(), excerpt(s.data))
		}
		return fmt.Errorf("%w: '\"' at line %d, column %d closes a quoted field but is followed by more text (a '\"' inside a quoted field must be doubled)%s; row: %q",
			csv.ErrQuote, s.errLine, s.errCol, s.resumeNote(), excerpt(s.data))
	}
	return nil
}

func (s *scannedRow) resumeNote() string {
	if s.resume < 0 {
		return ""
	}
	return fmt.Sprintf("; the lines from %d on are read again as rows", s.resumeLine)
}

func (s *scannedRow) invalidUTF8() string { return invalidUTF8At(s.data, s.line) }

// rowScanner splits a csv file into rows by encoding/csv's rules
// (Comma ',', no comments, LazyQuotes false), keeping at most limit bytes
// of each row.
type rowScanner struct {
	ra    io.ReaderAt
	size  int64
	limit int64
	br    *bufio.Reader
	pos   int64 // file offset of the next byte br returns
	line  int   // line of the next byte br returns
	buf   []byte
	begun bool
}

func (sc *rowScanner) init(ra io.ReaderAt, size, limit int64) {
	sc.ra, sc.size, sc.limit = ra, size, limit
	sc.seek(0, 1)
}

func (sc *rowScanner) seek(off int64, line int) {
	sr := io.NewSectionReader(sc.ra, off, sc.size-off)
	if sc.br == nil {
		sc.br = bufio.NewReaderSize(sr, scanBufferBytes)
	} else {
		sc.br.Reset(sr)
	}
	sc.pos, sc.line = off, line
}

// scanner states within a row
const (
	stFieldStart = iota
	stUnquoted
	stQuoted
	stQuoteInQuoted // a '"' inside a quoted field: its meaning depends on the next byte
	stQuoteCR       // '"' then '\r' inside a quoted field
	stSkipLine      // after a quoting error: the rest of the line belongs to the row
)

// next returns the next row, or io.EOF. The returned data is valid until
// the next call.
func (sc *rowScanner) next() (*scannedRow, error) {
	if !sc.begun {
		sc.begun = true
		if b, err := sc.br.Peek(3); err == nil && bytes.Equal(b, utf8BOM) {
			sc.br.Discard(3)
			sc.pos = 3
		}
	}
	// Skip blank lines: "\n" or "\r\n", and "\r" or nothing at the end.
blank:
	for {
		b, err := sc.br.Peek(2)
		if len(b) == 0 {
			if err == io.EOF {
				return nil, io.EOF
			}
			return nil, err
		}
		switch {
		case b[0] == '\n':
			sc.br.Discard(1)
			sc.pos++
			sc.line++
			continue
		case b[0] == '\r' && len(b) == 2 && b[1] == '\n':
			sc.br.Discard(2)
			sc.pos += 2
			sc.line++
			continue
		case b[0] == '\r' && len(b) == 1 && err == io.EOF:
			sc.br.Discard(1)
			sc.pos++
			return nil, io.EOF
		case len(b) < 2 && err != io.EOF:
			return nil, err
		}
		break blank
	}

	row := &scannedRow{start: sc.pos, line: sc.line, resume: -1}
	sc.buf = sc.buf[:0]
	state := stFieldStart
	lineStart := sc.pos
	var lastByte byte
	fail := func(q quoteState, at int64) {
		row.quote, row.errLine, row.errCol = q, sc.line, int(at-lineStart)+1
		state = stSkipLine
	}
	for {
		chunk, err := sc.br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull && err != io.EOF {
			return nil, err
		}
		if !row.over {
			if int64(len(sc.buf)+len(chunk)) <= sc.limit {
				sc.buf = append(sc.buf, chunk...)
			} else {
				row.over = true
				if room := sc.limit - int64(len(sc.buf)); room > 0 && len(sc.buf) < excerptBytes*2 {
					sc.buf = append(sc.buf, chunk[:min(int64(len(chunk)), room, excerptBytes*2)]...)
				}
			}
		}
		if len(chunk) > 0 {
			lastByte = chunk[len(chunk)-1]
		}
		base := sc.pos
		sc.pos += int64(len(chunk))
		ended := false
	bytesLoop:
		for i := 0; i < len(chunk); i++ {
			c := chunk[i]
			if c == '\n' { // the last byte of the chunk
				switch state {
				case stQuoted:
					sc.line++
					lineStart = base + int64(i) + 1
					if row.resume < 0 {
						row.resume, row.resumeLine = lineStart, sc.line
					}
				case stQuoteCR:
					// `"\r\n`: the field and the row end
					ended = true
				default:
					ended = true
				}
				break bytesLoop
			}
			switch state {
			case stFieldStart:
				switch c {
				case '"':
					state = stQuoted
					row.openLine, row.openCol = sc.line, int(base+int64(i)-lineStart)+1
				case ',':
				default:
					state = stUnquoted
				}
			case stUnquoted:
				// fast path to the next byte that matters
				j := bytes.IndexAny(chunk[i:], ",\"\n")
				if j < 0 {
					break bytesLoop // the rest of the chunk is in the field
				}
				i += j
				switch chunk[i] {
				case ',':
					state = stFieldStart
				case '"':
					fail(quoteBare, base+int64(i))
				case '\n':
					i-- // handled at the top of the loop
				}
			case stQuoted:
				j := bytes.IndexAny(chunk[i:], "\"\n")
				if j < 0 {
					break bytesLoop // the rest of the chunk is in the field
				}
				i += j
				if chunk[i] == '\n' {
					i--
					continue
				}
				state = stQuoteInQuoted
			case stQuoteInQuoted:
				switch c {
				case '"':
					state = stQuoted
				case ',':
					state = stFieldStart
				case '\r':
					state = stQuoteCR
				default:
					fail(quoteExtraneous, base+int64(i)-1)
				}
			case stQuoteCR:
				fail(quoteExtraneous, base+int64(i)-2)
			case stSkipLine:
				j := bytes.IndexByte(chunk[i:], '\n')
				if j < 0 {
					break bytesLoop // the rest of the chunk is in the field
				}
				i += j - 1
			}
		}
		if ended {
			sc.line++
			break
		}
		if err == io.EOF {
			if state == stQuoted {
				row.quote = quoteUnterminated
				row.errLine, row.errCol = row.openLine, row.openCol
			}
			break
		}
	}
	row.end = sc.pos
	row.endLine = sc.line
	if lastByte == '\n' {
		row.endLine = sc.line - 1
	}
	if row.quote != quoteOK && row.resume >= 0 {
		// A quoting error in a row of several lines: the lines after the
		// first may be rows of their own that a stray quote swallowed.
		sc.seek(row.resume, row.resumeLine)
	}
	row.data = sc.buf
	return row, nil
}

// OpenAttachment opens the file of msg.Attachments[i] (given by path in
// the csv file). It is safe for concurrent use.
func (r *reader) OpenAttachment(msg *sources.Message, i int) (io.ReadCloser, error) {
	if r.closed.Load() {
		return nil, sources.ErrClosed
	}
	a, err := files.AttachmentAt(msg, i)
	if err != nil {
		return nil, err
	}
	return files.OpenAttachment(a)
}

// scanBufferBytes is the row scanner's read buffer.
const scanBufferBytes = 64 << 10

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// clipString shortens s to n bytes for a reason.
func clipString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

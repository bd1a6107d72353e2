package msgfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sync/atomic"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/mbox"
)

// Rules of the records a message file reader cannot read.
const (
	// RuleOutlookMsg is an Outlook binary .msg file (an OLE compound
	// file): not a MIME message, so not read.
	RuleOutlookMsg sources.Rule = "outlook-msg"
	// RuleEmptyFile is a message file of 0 bytes.
	RuleEmptyFile sources.Rule = "empty-file"
	// RuleUnreadable is a message file that cannot be opened or read
	// (gone since it was listed, no permission).
	RuleUnreadable sources.Rule = "unreadable-file"
)

// oleMagic starts every OLE compound file (Outlook .msg, old .doc).
var oleMagic = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}

// Reader reads the files Names (slash-separated, relative to Root) in
// order, one message each. Locations name a file as Name + "/" + the
// file's name, Name being how the run shows the source (the folder as
// the config names it), and are whole-file locations (FILE alone).
type Reader struct {
	root  string
	names []string
	opts  sources.Options
	// base is what locations put before a file's name: opts.Name + "/",
	// or "" when the source is a single file (names[0] is then opts.Name).
	base string

	next   int // Next's position in names
	closed atomic.Bool
	bufs   mbox.Buffers // Load's buffers, shared by every file's load
}

var (
	_ sources.Reader           = (*Reader)(nil)
	_ sources.RawReader        = (*Reader)(nil)
	_ sources.AttachmentReader = (*Reader)(nil)
)

// New returns a reader of the files names under root. single says the
// source is one file (root/names[0]) that locations name opts.Name.
func New(root string, names []string, single bool, opts sources.Options) *Reader {
	opts = opts.WithDefaults(root)
	r := &Reader{root: root, names: names, opts: opts, base: opts.Name + "/"}
	if single {
		r.base = ""
	}
	return r
}

// Len is the number of files.
func (r *Reader) Len() int { return len(r.names) }

func (r *Reader) display(name string) string {
	if r.base == "" {
		return r.opts.Name
	}
	return r.base + name
}

// nameOf returns the file of a location this reader gave.
func (r *Reader) nameOf(loc sources.Location) (string, error) {
	if r.base == "" {
		if loc.File != r.opts.Name || len(r.names) != 1 {
			return "", fmt.Errorf("%s: not a record of %s", loc, r.opts.Name)
		}
		return r.names[0], nil
	}
	name, ok := cutPrefix(loc.File, r.base)
	if !ok || name == "" || !filepath.IsLocal(filepath.FromSlash(name)) {
		return "", fmt.Errorf("%s: not a record of %s", loc, r.opts.Name)
	}
	return name, nil
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) < len(p) || s[:len(p)] != p {
		return "", false
	}
	return s[len(p):], true
}

// Close ends the reader; Next and Load fail afterwards. No file is open.
func (r *Reader) Close() error {
	r.closed.Store(true)
	return nil
}

// Next returns the envelope of the next file's message, a
// *sources.RecordError for a file that cannot be read as one, or io.EOF.
func (r *Reader) Next() (*sources.Envelope, error) {
	if r.closed.Load() {
		return nil, sources.ErrClosed
	}
	if r.next >= len(r.names) {
		return nil, io.EOF
	}
	name := r.names[r.next]
	r.next++
	env, err := r.scan(name)
	if err != nil {
		return nil, err
	}
	env.Seq = r.next - 1
	return env, nil
}

// scan reads the header of one file.
func (r *Reader) scan(name string) (*sources.Envelope, error) {
	loc := sources.Location{File: r.display(name), Offset: sources.WholeFile}
	f, size, err := r.open(name)
	if err != nil {
		return nil, &sources.RecordError{Loc: loc, Rule: RuleUnreadable, Err: err}
	}
	defer f.Close()
	if rerr := check(f, size, loc); rerr != nil {
		return nil, rerr
	}
	m, err := mbox.NewMessage(f, size, r.msgOpts(loc.File), &r.bufs)
	if err != nil {
		return nil, &sources.RecordError{Loc: loc, Rule: RuleUnreadable, Err: err, Size: size}
	}
	env, err := m.Next()
	var re *sources.RecordError
	switch {
	case errors.As(err, &re):
		re.Loc = loc
		re.Size = size
		return nil, re
	case err == io.EOF:
		return nil, &sources.RecordError{Loc: loc, Rule: RuleEmptyFile, Err: errors.New("the file holds only blank lines, no message"), Size: size}
	case err != nil:
		return nil, &sources.RecordError{Loc: loc, Rule: RuleUnreadable, Err: err, Size: size}
	}
	env.Loc = loc
	return env, nil
}

// check refuses what is no message file: an empty file, an Outlook .msg.
func check(f io.ReaderAt, size int64, loc sources.Location) *sources.RecordError {
	if size == 0 {
		return &sources.RecordError{Loc: loc, Rule: RuleEmptyFile, Err: errors.New("the file is empty (0 bytes)")}
	}
	var magic [8]byte
	if n, _ := f.ReadAt(magic[:], 0); n == len(magic) && bytes.Equal(magic[:], oleMagic) {
		return &sources.RecordError{Loc: loc, Rule: RuleOutlookMsg, Size: size,
			Err: errors.New("an Outlook binary .msg file (OLE compound file), not a MIME message: save it from Outlook as .eml (or convert it, e.g. with msgconvert) and read that")}
	}
	return nil
}

func (r *Reader) msgOpts(file string) sources.Options {
	o := r.opts
	o.Name = file
	return o
}

// open opens a file of the list; a folder or anything else that is not a
// regular file is refused.
func (r *Reader) open(name string) (*os.File, int64, error) {
	f, err := os.Open(filepath.Join(r.root, filepath.FromSlash(name)))
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", path.Base(name))
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// message opens env's file and its single-message reader, whose record
// is env at offset 0. The caller closes the file.
func (r *Reader) message(env *sources.Envelope) (*os.File, sources.Reader, *sources.Envelope, error) {
	if r.closed.Load() {
		return nil, nil, nil, sources.ErrClosed
	}
	name, err := r.nameOf(env.Loc)
	if err != nil {
		return nil, nil, nil, err
	}
	f, size, err := r.open(name)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("load %s: %w", env.Loc, err)
	}
	if size != env.Size {
		f.Close()
		return nil, nil, nil, fmt.Errorf("load %s: the file is %d bytes now, %d when it was scanned: %w", env.Loc, size, env.Size, sources.ErrAttachmentChanged)
	}
	m, err := mbox.NewMessage(f, size, r.msgOpts(env.Loc.File), &r.bufs)
	if err != nil {
		f.Close()
		return nil, nil, nil, fmt.Errorf("load %s: %w", env.Loc, err)
	}
	inner := *env
	inner.Loc.Offset = 0
	return f, m, &inner, nil
}

// Load decodes env's message. It is safe for concurrent use.
func (r *Reader) Load(env *sources.Envelope) (*sources.Message, error) {
	return r.LoadWith(env, sources.LoadOptions{})
}

var _ sources.OptionsLoader = (*Reader)(nil)

// LoadWith is Load leaving out what o says.
func (r *Reader) LoadWith(env *sources.Envelope, o sources.LoadOptions) (*sources.Message, error) {
	f, m, inner, err := r.message(env)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	msg, err := sources.LoadWith(m, inner, o)
	if err != nil {
		return nil, err
	}
	msg.Envelope = env
	return msg, nil
}

// OpenAttachment streams msg.Attachments[i]; the file stays open until
// the returned reader is closed.
func (r *Reader) OpenAttachment(msg *sources.Message, i int) (io.ReadCloser, error) {
	f, m, inner, err := r.message(msg.Envelope)
	if err != nil {
		return nil, err
	}
	cp := *msg
	cp.Envelope = inner
	rc, err := m.(sources.AttachmentReader).OpenAttachment(&cp, i)
	if err != nil {
		f.Close()
		return nil, err
	}
	return readCloser{rc, f}, nil
}

type readCloser struct {
	io.ReadCloser
	f *os.File
}

func (c readCloser) Close() error { return errors.Join(c.ReadCloser.Close(), c.f.Close()) }

// Raw returns the file's bytes; the file is read when the returned
// reader is first read, and closed at its end.
func (r *Reader) Raw(env *sources.Envelope) (io.Reader, error) {
	name, err := r.nameOf(env.Loc)
	if err != nil {
		return nil, err
	}
	return &lazyFile{path: filepath.Join(r.root, filepath.FromSlash(name)), size: env.Size}, nil
}

// lazyFile opens its file at the first Read and closes it at the end.
type lazyFile struct {
	path string
	size int64
	f    *os.File
	r    io.Reader
	done bool
}

func (l *lazyFile) Read(p []byte) (int, error) {
	if l.done {
		return 0, io.EOF
	}
	if l.f == nil {
		f, err := os.Open(l.path)
		if err != nil {
			l.done = true
			return 0, err
		}
		l.f, l.r = f, io.LimitReader(f, l.size)
	}
	n, err := l.r.Read(p)
	if err != nil {
		l.done = true
		l.f.Close()
	}
	return n, err
}

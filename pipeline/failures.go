package pipeline

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/pipeline/report"
	"github.com/threadlift/threadlift/sources"
)

// What an import writes next to the checkpoint (issue 11).
//
// failures.jsonl lists every failure record, one JSON object per line, as
// `failures --json` prints them; it is rewritten by every import.
//
// The records that were not imported (rejected messages, the messages of
// failed and rejected threads not imported, records that could not be
// read) are copied, in each source's own format and marked as corrections
// (sources/failures.go), into a new folder per run:
// failures/YYYY-MM-DDTHH-MM-SSZ/, one file per source file, named after
// it. A run never writes into a folder that exists, so a file the user
// fixes in place is never overwritten; a run whose copies are the same as
// the latest folder's writes no new folder. Fixed files are added as
// sources (same type, fields and thread_key_prefix as their originals):
// each copy then replaces its original (corrections.go).
const (
	FailuresJSONL = "failures.jsonl"
	FailuresDir   = "failures"
)

// FailureRecords converts the checkpoint's failures to their JSON shape.
func FailureRecords(fs []checkpoint.FailureRecord) []report.Failure {
	out := make([]report.Failure, 0, len(fs))
	for _, f := range fs {
		out = append(out, FailureJSON(f))
	}
	return out
}

// FailureJSON converts one of the checkpoint's failures to its JSON shape.
func FailureJSON(f checkpoint.FailureRecord) report.Failure {
	j := report.Failure{ThreadKey: f.ThreadKey, MessageKey: f.MessageKey, State: string(f.State), Rule: f.Rule,
		Reason: f.Reason, HTTPStatus: f.HTTPStatus, RequestID: f.RequestID, Source: f.Source}
	if f.TicketID != 0 {
		id := f.TicketID
		j.TicketID = &id
	}
	return j
}

// failuresOut says where an import copied the records it did not import.
type failuresOut struct {
	dir     string // the run's folder; "" when nothing was copied
	records int
	same    bool // the copies are those of dir, written by an earlier run
}

// failedSet is what the failures say was not imported: messages by
// location and key (a JSON Lines thread object's messages share a line),
// records that could not be read by location, and failed or rejected
// threads, whose messages not imported are looked up after.
type failedSet struct {
	want, wantBad, threads map[string]bool
}

func (fs *failedSet) add(f checkpoint.FailureRecord) {
	switch {
	case f.ThreadKey == "" && f.MessageKey == "":
		fs.wantBad[f.Source] = true
	case f.MessageKey != "":
		fs.want[f.Source+"\x00"+f.MessageKey] = true
	default:
		fs.threads[f.ThreadKey] = true
	}
}

// writeFailuresJSONL writes every failure of the checkpoint to path, one
// JSON object a line, reading them one at a time, and returns what they
// say was not imported.
func (im *importer) writeFailuresJSONL(ctx context.Context, path string) (*failedSet, error) {
	fs := &failedSet{want: map[string]bool{}, wantBad: map[string]bool{}, threads: map[string]bool{}}
	err := report.WriteAtomic(path, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		enc := json.NewEncoder(bw)
		err := im.store.EachFailure(ctx, 1, func(_ int, f checkpoint.FailureRecord) error {
			fs.add(f)
			if err := enc.Encode(FailureJSON(f)); err != nil {
				return fmt.Errorf("encode failure: %w", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return bw.Flush()
	})
	return fs, err
}

// notImported says which records of the sources did not make it: the
// messages of fs, and those of its failed and rejected threads that were
// not imported.
func (im *importer) notImported(ctx context.Context, fs *failedSet) (want, wantBad map[string]bool, err error) {
	for key := range fs.threads {
		msgs, err := im.store.Messages(ctx, key)
		if err != nil {
			return nil, nil, err
		}
		for _, m := range msgs {
			if m.State != checkpoint.MessageImported && m.Source != "" {
				fs.want[m.Source+"\x00"+m.Key] = true
			}
		}
	}
	return fs.want, fs.wantBad, nil
}

// writeFailures rewrites failures.jsonl and copies the records that were
// not imported into a new failures folder (see the top of this file).
func (im *importer) writeFailures(ctx context.Context) (failuresOut, error) {
	var out failuresOut
	dir := filepath.Dir(im.store.Path())
	failed, err := im.writeFailuresJSONL(ctx, filepath.Join(dir, im.opts.Shard.Path(FailuresJSONL)))
	if err != nil {
		return out, err
	}
	want, wantBad, err := im.notImported(ctx, failed)
	if err != nil {
		return out, err
	}
	if len(want) == 0 && len(wantBad) == 0 {
		return out, nil
	}
	if err := im.collectCopies(want, wantBad); err != nil {
		return out, err
	}
	perSource := make([][]sources.FailedRecord, len(im.a.Stats()))
	for _, c := range im.copies.recs {
		// What an earlier chunk kept, if it is still not imported.
		if c.Bad != nil && wantBad[c.Bad.Loc.String()] || c.Env != nil && (want[c.Env.Loc.String()+"\x00"+c.Env.Key()] || want[c.Env.Loc.String()+"\x00"+c.Env.ContentKey]) {
			perSource[c.src] = append(perSource[c.src], c.FailedRecord)
			out.records++
		}
	}
	if out.records == 0 {
		return out, nil
	}
	if im.chunks != nil {
		for _, recs := range perSource {
			sortFailed(recs)
		}
	}
	out.dir, out.same, err = im.writeCopies(filepath.Join(dir, im.opts.Shard.Path(FailuresDir)), perSource)
	return out, err
}

// failedCopies are the records not imported, kept for the failures
// folder: an import in chunks keeps each chunk's before closing it.
type failedCopies struct {
	recs []failedCopy
	seen map[string]bool
}

type failedCopy struct {
	sources.FailedRecord
	src int
}

// collectCopies keeps the records of im.a that want and wantBad say were
// not imported, once each.
func (im *importer) collectCopies(want, wantBad map[string]bool) error {
	if im.a.Closed() {
		return nil // a chunk's, kept before it was closed (keepCopies)
	}
	c := &im.copies
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	for i := range im.a.Len() {
		if im.a.Replaced(i) || im.a.Changed(im.a.Src(i)) {
			continue // a file that changed since the scan holds other bytes there now
		}
		env, err := im.a.Envelope(i)
		if err != nil {
			return err
		}
		loc := env.Loc.String()
		// A message rejected as another message's id is listed under
		// its content key.
		if k := loc + "\x00" + env.Key(); (want[k] || want[loc+"\x00"+env.ContentKey]) && !c.seen[k] {
			c.seen[k] = true
			c.recs = append(c.recs, failedCopy{sources.FailedRecord{Env: env}, im.a.Src(i)})
		}
	}
	for _, b := range im.a.Bad {
		if loc := b.Err.Loc.String(); wantBad[loc] && b.Err.Size > 0 && !im.a.Changed(b.Src) && !c.seen[loc] {
			c.seen[loc] = true
			c.recs = append(c.recs, failedCopy{sources.FailedRecord{Bad: b.Err}, b.Src})
		}
	}
	return nil
}

// keepCopies keeps the records of the chunk im.a not imported so far,
// for the failures folder written at the end of the run, after the
// chunk is closed.
func (im *importer) keepCopies(ctx context.Context) error {
	fs := &failedSet{want: map[string]bool{}, wantBad: map[string]bool{}, threads: map[string]bool{}}
	err := im.store.EachFailure(ctx, 1, func(_ int, f checkpoint.FailureRecord) error {
		fs.add(f)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read failures: %w", err)
	}
	want, wantBad, err := im.notImported(ctx, fs)
	if err != nil {
		return fmt.Errorf("read failures: %w", err)
	}
	return im.collectCopies(want, wantBad)
}

// sortFailed puts a source's records kept from several chunks in file
// order: messages, then unreadable records, as one archive's are.
func sortFailed(recs []sources.FailedRecord) {
	slices.SortStableFunc(recs, func(a, b sources.FailedRecord) int {
		if (a.Bad == nil) != (b.Bad == nil) {
			if a.Bad == nil {
				return -1
			}
			return 1
		}
		return cmp.Compare(failedOffset(a), failedOffset(b))
	})
}

func failedOffset(r sources.FailedRecord) int64 {
	if r.Bad != nil {
		return r.Bad.Loc.Offset
	}
	return r.Env.Loc.Offset
}

// writeCopies writes each source's copies into a new folder under parent
// and returns it; or, when the latest folder there holds the same files,
// that folder (same).
func (im *importer) writeCopies(parent string, perSource [][]sources.FailedRecord) (dir string, same bool, err error) {
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", false, err
	}
	// Folders left by a run that died while writing its copies.
	if old, _ := filepath.Glob(filepath.Join(parent, ".run-*")); len(old) > 0 {
		for _, o := range old {
			os.RemoveAll(o)
		}
	}
	tmp, err := os.MkdirTemp(parent, ".run-")
	if err != nil {
		return "", false, err
	}
	// MkdirTemp makes the folder private (0700); like the reports, the
	// copies are for people and tools running as other users.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", false, err
	}
	defer os.RemoveAll(tmp) // nothing left once renamed
	used := map[string]bool{}
	for src, recs := range perSource {
		if len(recs) == 0 {
			continue
		}
		fw, ok := im.a.Reader(src).(sources.FailureWriter)
		if !ok {
			continue
		}
		name := im.a.Stats()[src].File()
		base := fw.FailuresName(filepath.Base(filepath.FromSlash(name)))
		file := base
		for k := 2; used[file]; k++ {
			file = strconv.Itoa(k) + "-" + base
		}
		used[file] = true
		if err := writeFileSynced(filepath.Join(tmp, file), func(w io.Writer) error { return fw.WriteFailures(w, recs) }); err != nil {
			return "", false, fmt.Errorf("copy the records of %s that were not imported: %w", name, err)
		}
	}
	if latest := latestRun(parent); latest != "" && sameFiles(tmp, latest) {
		return latest, true, nil
	}
	stamp := im.opts.Now().UTC().Format("2006-01-02T15-04-05Z")
	dir = filepath.Join(parent, stamp)
	for k := 2; ; k++ {
		err := os.Rename(tmp, dir)
		if err == nil {
			break
		}
		// Rename replaces an empty folder on some systems and fails on a
		// full one: never reuse a name that exists.
		if _, serr := os.Lstat(dir); serr == nil && k < 1000 {
			dir = filepath.Join(parent, stamp+"-"+strconv.Itoa(k))
			continue
		}
		return "", false, err
	}
	if d, err := os.Open(parent); err == nil {
		d.Sync()
		d.Close()
	}
	return dir, false, nil
}

// writeFileSynced creates path (it must not exist) and writes it durably.
func writeFileSynced(path string, write func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, report.FileMode)
	if err != nil {
		return err
	}
	if err := f.Chmod(report.FileMode); err != nil { // whatever the umask
		f.Close()
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// latestRun returns the newest run folder under parent, or "".
func latestRun(parent string) string {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return ""
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return ""
	}
	// "2024-05-01T10-00-00Z-2" sorts after "2024-05-01T10-00-00Z".
	slices.Sort(names)
	return filepath.Join(parent, names[len(names)-1])
}

// sameFiles reports whether two folders hold the same files with the same
// contents.
func sameFiles(a, b string) bool {
	list := func(dir string) map[string][32]byte {
		out := map[string][32]byte{}
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if p != dir {
					return errors.New("a folder inside")
				}
				return nil
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			h := sha256.New()
			if _, err := io.Copy(h, f); err != nil {
				return err
			}
			var sum [32]byte
			copy(sum[:], h.Sum(nil))
			out[d.Name()] = sum
			return nil
		})
		if err != nil {
			return nil
		}
		return out
	}
	la, lb := list(a), list(b)
	if la == nil || lb == nil || len(la) != len(lb) {
		return false
	}
	for k, v := range la {
		if lb[k] != v {
			return false
		}
	}
	return true
}

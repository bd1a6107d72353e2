package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/threadlift/threadlift/internal/fixtures"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/formats"
	"github.com/threadlift/threadlift/zendesk"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// attachmentCorpus are real messages with attachments in several transfer
// and file-name encodings.
var attachmentCorpus = []string{
	"hyperkitty/attachment-1.eml", "hyperkitty/attachment-2.eml", "hyperkitty/attachment-4.eml", "hyperkitty/attachment-5.eml",
	"php-mime-mail-parser/m0001.mbox", "php-mime-mail-parser/m0002.mbox", "php-mime-mail-parser/m0008.eml",
	"php-mime-mail-parser/m0011.eml", "php-mime-mail-parser/m0013.eml", "php-mime-mail-parser/issue84.eml",
}

// expectedAttachments reads every message of the sources with the
// readers themselves: message key → "name size sha256" of each attachment
// the policy lets through.
func expectedAttachments(t *testing.T, srcs []Source, pol mapping.AttachmentPolicy) map[string][]string {
	t.Helper()
	want := map[string][]string{}
	for _, s := range srcs {
		r, err := formats.Registry().Open(s.Type, s.Path, sources.Options{Name: s.Name})
		if err != nil {
			t.Fatal(err)
		}
		for {
			env, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			msg, err := r.Load(env)
			if err != nil {
				t.Fatal(err)
			}
			for i, a := range msg.Attachments {
				if pol.MaxBytes > 0 && a.Size > pol.MaxBytes {
					continue
				}
				rc, err := r.(sources.AttachmentReader).OpenAttachment(msg, i)
				if err != nil {
					t.Fatal(err)
				}
				h := sha256.New()
				n, err := io.Copy(h, rc)
				rc.Close()
				if err != nil {
					t.Fatal(err)
				}
				want[msg.Key()] = append(want[msg.Key()], a.Name+" "+strconv.FormatInt(n, 10)+" "+hex.EncodeToString(h.Sum(nil)))
			}
		}
		r.Close()
	}
	return want
}

// landed reads the fake: message key → "name size sha256" of the files
// referenced by its event.
func landed(t *testing.T, f *zendesktest.Fake) map[string][]string {
	t.Helper()
	got := map[string][]string{}
	for _, id := range f.TicketIDs() {
		for _, c := range f.SideConversations(id) {
			for _, e := range c.Events {
				for _, a := range e.Message.Attachments {
					up, ok := f.Attachment(a.ID)
					if !ok {
						t.Errorf("event references unknown attachment %s", a.ID)
						continue
					}
					k := e.Message.ExternalIDs[zendesk.MessageKeyField]
					got[k] = append(got[k], up.Name+" "+strconv.FormatInt(up.Size, 10)+" "+up.SHA256)
				}
			}
		}
	}
	return got
}

func sortedValues(m map[string][]string) map[string][]string {
	for k := range m {
		sort.Strings(m[k])
	}
	return m
}

// TestAttachmentsLandOnTheRightEvents imports a generated mailbox where
// every message has files (every transfer and file-name encoding) and
// checks that every event references exactly its own files, byte for
// byte. TestCorpusLayer does it on real messages too.
func TestAttachmentsLandOnTheRightEvents(t *testing.T) {
	path, a := writeGenerated(t, fixtures.Options{Seed: 6, Threads: 12, MaxReplies: 3, AttachmentEvery: 1, Charsets: true})
	attachmentsLand(t, []Source{{Type: "mbox", Path: path, Name: "generated.mbox"}}, a.Attachments())
}

// attachmentsLand imports srcs and compares the files of every event with
// what the readers find in the archive. want is the number of attachments
// the archive holds, or 0 when not known (at least 10).
func attachmentsLand(t *testing.T, srcs []Source, wantN int) {
	pol := mapping.AttachmentPolicy{MaxBytes: 1 << 20}
	opts := testOptions("", mapping.TicketRules{DefaultTicketID: 3})
	opts.Sources = srcs
	opts.Mapper = mapping.New(mapping.Options{Ticket: mapping.TicketRules{DefaultTicketID: 3}, Attachments: pol, Now: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }})
	want := sortedValues(expectedAttachments(t, srcs, pol))
	n := 0
	for _, v := range want {
		n += len(v)
	}
	if n < 10 || wantN > 0 && n != wantN {
		t.Fatalf("the archive gave %d attachments (want %d, at least 10): %v", n, wantN, want)
	}
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	sum, err := Import(context.Background(), newClient(t, srv), store, opts)
	if err != nil {
		t.Fatal(err)
	}
	got := sortedValues(landed(t, srv.Fake))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("attachments per message (-from the archive +in Zendesk):\n%s", diff)
	}
	t.Logf("%d messages, %d attachments uploaded (%d requests)", sum.EventsImported, n, srv.RequestCount("upload"))
	if up := srv.RequestCount("upload"); up != n {
		t.Errorf("%d uploads, want %d (one per attachment)", up, n)
	}
}

// oneAttachment writes a generated archive of one message with files.
func oneAttachment(t *testing.T) string {
	path, a := writeGenerated(t, fixtures.Options{Seed: 1, Threads: 1, AttachmentEvery: 1})
	if a.Attachments() == 0 {
		t.Fatal("the generated message has no attachment")
	}
	return path
}

// TestUploadReuse: when an import's answer is lost, the resend re-uses the
// uploads it already made while they are recent, and uploads again once
// they are stale.
func TestUploadReuse(t *testing.T) {
	path := oneAttachment(t)
	for _, tc := range []struct {
		name    string
		reuse   time.Duration
		uploads int
	}{{"recent uploads are re-used", time.Hour, 1}, {"stale uploads are sent again", time.Nanosecond, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
			var imports atomic.Int64
			srv.SetHook(func(r *http.Request) zendesktest.Fault {
				if strings.HasSuffix(r.URL.Path, "/import") && imports.Add(1) == 1 {
					return zendesktest.FaultResetBeforeCommit
				}
				return zendesktest.FaultNone
			})
			opts := testOptions(path, mapping.TicketRules{DefaultTicketID: 3})
			opts.ReuseUploadsFor = tc.reuse
			want := 0
			for _, v := range expectedAttachments(t, opts.Sources, mapping.AttachmentPolicy{}) {
				want += len(v)
			}
			if _, err := Import(context.Background(), newClient(t, srv), newStore(t), opts); err != nil {
				t.Fatal(err)
			}
			if got := srv.RequestCount("upload"); got != tc.uploads*want {
				t.Errorf("%d uploads, want %d", got, tc.uploads*want)
			}
			if len(landed(t, srv.Fake)) == 0 {
				t.Errorf("no attachment landed")
			}
		})
	}
}

// TestRefusedUpload: Zendesk refuses a file type (422): the thread fails
// with the reason, and nothing is imported without its attachment.
func TestRefusedUpload(t *testing.T) {
	path := oneAttachment(t)
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true, AllowedAttachmentTypes: []string{"image/*"}})
	store := newStore(t)
	sum, err := Import(context.Background(), newClient(t, srv), store, testOptions(path, mapping.TicketRules{DefaultTicketID: 3}))
	if err != nil {
		t.Fatal(err)
	}
	fs, _ := store.Failures(context.Background())
	if sum.Failed != 1 || len(fs) != 1 || fs[0].HTTPStatus != 422 || !strings.Contains(fs[0].Reason, "not allowed") {
		t.Errorf("failed %d, failures %+v; want one thread failed with the 422 and its reason", sum.Failed, fs)
	}
	if n := srv.RequestCount("import"); n != 0 {
		t.Errorf("%d imports sent, want none", n)
	}
}

package mbox

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/threadlift/threadlift/sources"
)

const takeout = "From 1001@xxx Wed Aug 18 07:56:10 +0000 2021\n" +
	"X-GM-THRID: 1001\nX-Gmail-Labels: Inbox,Important\nFrom: a@x.example\nTo: b@x.example\nSubject: one\nDate: Mon, 1 Mar 2024 10:00:00 +0000\nMessage-ID: <m1@x>\n\nbody\n\n" +
	"From 1002@xxx Wed Aug 18 07:56:10 +0000 2021\n" +
	"X-GM-THRID: 1001\nX-Gmail-Labels: =?UTF-8?Q?Sp=61m?=,\n Unread\nFrom: a@x.example\nTo: b@x.example\nSubject: spam\nDate: Mon, 1 Mar 2024 11:00:00 +0000\nMessage-ID: <m2@x>\n\nbody\n\n" +
	"From -\n" +
	"X-Gmail-Labels: Trash\nFrom: a@x.example\nSubject: no date, trash\nMessage-ID: <m3@x>\n\nbody\n\n" +
	"From 1004@xxx Wed Aug 18 07:56:10 +0000 2021\n" +
	"From: a@x.example\nTo: b@x.example\nSubject: no thrid\nDate: Mon, 1 Mar 2024 12:00:00 +0000\nMessage-ID: <m4@x>\n\nbody\n"

func readTakeout(t testing.TB, data string, fo sources.FormatOptions) (string, map[string]int) {
	t.Helper()
	r := newReader(strings.NewReader(data), int64(len(data)), nil, sources.Options{Now: testNow, Format: fo}.WithDefaults("t.mbox"), scanBufferBytes)
	var b strings.Builder
	for {
		env, err := r.Next()
		if err == io.EOF {
			break
		}
		var re *sources.RecordError
		if errors.As(err, &re) {
			fmt.Fprintf(&b, "%s: %s\n", re.Loc, re.Rule)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var rules []string
		for _, is := range env.Issues {
			rules = append(rules, is.Rule)
		}
		fmt.Fprintf(&b, "%s %s thread %q %v\n", env.Loc, env.Key(), env.ThreadID, rules)
	}
	return b.String(), r.Skipped()
}

// TestGmailThreadByAndSkipLabels: X-GM-THRID becomes the thread id only
// with thread_by gmail; skip_labels leaves out Spam (an encoded, folded
// label) but never a rejected message (m3 has no date: reported).
func TestGmailThreadByAndSkipLabels(t *testing.T) {
	for _, tt := range []struct {
		name    string
		fo      sources.FormatOptions
		want    string
		skipped string
	}{
		{"jwz", sources.FormatOptions{}, "t.mbox@0 m1@x thread \"\" []\nt.mbox@204 m2@x thread \"\" []\nt.mbox@421 m3@x thread \"\" [no-date]\nt.mbox@518 m4@x thread \"\" []\n", "map[]"},
		{"gmail", sources.FormatOptions{ThreadBy: sources.ThreadByGmail, SkipLabels: []string{"SPAM", "trash"}},
			"t.mbox@0 m1@x thread \"gmail:1001\" []\nt.mbox@421 m3@x thread \"\" [no-date no-gmail-thread-id]\nt.mbox@518 m4@x thread \"\" [no-gmail-thread-id]\n", "map[label SPAM:1]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, skipped := readTakeout(t, takeout, tt.fo)
			if got != tt.want || fmt.Sprint(skipped) != tt.skipped {
				t.Errorf("read =\n%s skipped %v\nwant\n%s skipped %s", got, skipped, tt.want, tt.skipped)
			}
		})
	}
}

// FuzzTakeout reads any mbox with Gmail threading and skip_labels on:
// no panic, every message returned or counted as skipped.
func FuzzTakeout(f *testing.F) {
	f.Add([]byte(takeout))
	f.Add([]byte("From x\nX-GM-THRID:\nX-Gmail-Labels: ,,,\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newReader(strings.NewReader(string(data)), int64(len(data)), nil,
			sources.Options{Now: testNow, MaxMessageBytes: 1 << 20, Format: sources.FormatOptions{ThreadBy: sources.ThreadByGmail, SkipLabels: []string{"Spam"}}}.WithDefaults("f"), scanBufferBytes)
		for i := 0; i < 10000; i++ {
			env, err := r.Next()
			if err == io.EOF {
				return
			}
			var re *sources.RecordError
			if err != nil && !errors.As(err, &re) {
				t.Fatal(err)
			}
			if env != nil && env.ThreadID != "" && !strings.HasPrefix(env.ThreadID, "gmail:") {
				t.Fatalf("thread id %q", env.ThreadID)
			}
		}
		t.Fatal("Next never ended")
	})
}

package zendesk_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/threadlift/threadlift/zendesk"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// hookAll makes every request of method (any when "") get fault.
func hookAll(srv *zendesktest.Server, method string, fault zendesktest.Fault) {
	srv.SetHook(func(r *http.Request) zendesktest.Fault {
		if method == "" || r.Method == method {
			return fault
		}
		return zendesktest.FaultNone
	})
}

// TestResponseBodyCap: a 2xx that streams a huge body is not read past
// its cap. For a write that is an unknown outcome (retry after looking it
// up: it landed); for a read, a failure that is not retried.
func TestResponseBodyCap(t *testing.T) {
	const huge = 64 << 20
	srv := newServer(t, zendesktest.Config{})
	srv.SetFaults(zendesktest.Faults{HugeBody: huge})
	hookAll(srv, "", zendesktest.FaultHugeBody)
	c := newClient(t, srv, func(o *zendesk.Options) { o.MaxResponseBytes = 1 << 20 })

	_, err := c.Import(t.Context(), 5, importReq("k", 1))
	if !errors.Is(err, zendesk.ErrResponseTooLarge) {
		t.Fatalf("Import answered with a %d MiB body = %v, want ErrResponseTooLarge", huge>>20, err)
	}
	if retry, _ := zendesk.Retryable(err); !retry || !zendesk.OutcomeUnknown(err) {
		t.Errorf("write over the cap: Retryable %v, OutcomeUnknown %v; want both (look it up, then go on)", retry, zendesk.OutcomeUnknown(err))
	}
	if n := len(srv.SideConversations(5)); n != 1 {
		t.Errorf("the import landed %d times, want 1", n)
	}
	_, _, err = c.ListSideConversations(t.Context(), 5)
	if !errors.Is(err, zendesk.ErrResponseTooLarge) {
		t.Fatalf("List answered with a %d MiB body = %v, want ErrResponseTooLarge", huge>>20, err)
	}
	if retry, _ := zendesk.Retryable(err); retry {
		t.Errorf("read over the cap is retryable: the same read brings the same body")
	}
	// The client stopped reading: the server could not write it all (only
	// what the socket buffers took past the cap).
	if sent := srv.HugeBodySent(); sent >= 2*huge-8<<20 {
		t.Errorf("the server wrote %d MiB of padding for two answers: the client read on past its 1 MiB cap", sent>>20)
	}
	// Without the override, an upload's answer is capped at 1 MiB too.
	up := newClient(t, srv, nil)
	if _, err := up.UploadAttachment(t.Context(), "a.txt", "text/plain", strings.NewReader("hello")); !errors.Is(err, zendesk.ErrResponseTooLarge) {
		t.Errorf("upload answered with a %d MiB body = %v, want ErrResponseTooLarge", huge>>20, err)
	}
}

// TestRetryAfterTooLong: a Retry-After longer than MaxRetryAfter is not
// waited for: the request fails with a *PauseError saying until when, and
// so does every request while the gate is closed, without reaching the
// server. A shorter one still pauses as before.
func TestRetryAfterTooLong(t *testing.T) {
	for _, fault := range []zendesktest.Fault{zendesktest.Fault429, zendesktest.Fault503RetryAfter} {
		t.Run(fault.String(), func(t *testing.T) {
			srv := newServer(t, zendesktest.Config{})
			srv.SetFaults(zendesktest.Faults{RetryAfter: 999999 * time.Second})
			hookAll(srv, http.MethodPost, fault)
			c := newClient(t, srv, nil) // MaxRetryAfter: the default, 15m
			before := time.Now()
			_, err := c.Import(t.Context(), 5, importReq("k", 1))
			after := time.Now()
			var pe *zendesk.PauseError
			if !errors.As(err, &pe) {
				t.Fatalf("Import with Retry-After: 999999 = %v, want a *PauseError", err)
			}
			if pe.Until.Before(before.Add(999999*time.Second)) || pe.Until.After(after.Add(999999*time.Second)) || pe.Max != zendesk.DefaultMaxRetryAfter {
				t.Errorf("PauseError = until %s, max %s; want 999999s from the answer and %s", pe.Until, pe.Max, zendesk.DefaultMaxRetryAfter)
			}
			if retry, _ := zendesk.Retryable(err); retry {
				t.Errorf("a pause longer than the maximum is retryable")
			}
			if got, want := zendesk.OutcomeUnknown(err), fault == zendesktest.Fault503RetryAfter; got != want {
				t.Errorf("OutcomeUnknown = %v, want %v", got, want)
			}
			if !strings.Contains(err.Error(), "max_retry_after") || !strings.Contains(err.Error(), pe.Until.Local().Format("15:04")) {
				t.Errorf("PauseError text %q does not say until when, nor the key", err)
			}
			n := srv.RequestCount("total")
			_, err = c.GetTicket(t.Context(), 5)
			if !errors.As(err, &pe) || pe.Err != nil || !pe.Until.Equal(c.Gate().Until()) {
				t.Errorf("the next request = %v, want a *PauseError until the gate opens", err)
			}
			if m := srv.RequestCount("total"); m != n {
				t.Errorf("%d requests reached the server while it asked to pause", m-n)
			}
		})
	}
	t.Run("short", func(t *testing.T) {
		srv := newServer(t, zendesktest.Config{})
		srv.SetFaults(zendesktest.Faults{RetryAfter: 2 * time.Second})
		hookAll(srv, http.MethodPost, zendesktest.Fault429)
		c := newClient(t, srv, nil)
		_, err := c.Import(t.Context(), 5, importReq("k", 1))
		var rl *zendesk.RateLimitError
		if !errors.As(err, &rl) || errors.Is(err, zendesk.ErrPauseTooLong) {
			t.Fatalf("Import with Retry-After: 2 = %v, want a plain *RateLimitError", err)
		}
		if retry, wait := zendesk.Retryable(err); !retry || wait != 2*time.Second {
			t.Errorf("Retryable = %v, %s; want true, 2s", retry, wait)
		}
	})
}

// TestMisconfiguredAccount: a redirect is never followed (the fake it
// points at gets nothing) and shows its Location; it and a 403 on a write
// are Misconfigured, with a hint; a 403 on a read is one ticket's problem.
func TestMisconfiguredAccount(t *testing.T) {
	elsewhere := newServer(t, zendesktest.Config{})
	for _, fault := range []zendesktest.Fault{zendesktest.Fault301, zendesktest.Fault307} {
		t.Run(fault.String(), func(t *testing.T) {
			srv := newServer(t, zendesktest.Config{})
			srv.SetFaults(zendesktest.Faults{RedirectTo: elsewhere.URL})
			hookAll(srv, "", fault)
			c := newClient(t, srv, nil)
			_, err := c.Import(t.Context(), 5, importReq("k", 1))
			want := elsewhere.URL + "/api/v2/tickets/5/side_conversations/import"
			hint, ok := zendesk.Misconfigured(err)
			if !ok || !strings.Contains(hint, want) || !strings.Contains(hint, "zendesk.url") || !strings.Contains(err.Error(), want) {
				t.Errorf("Import redirected: err %v, Misconfigured %v %q; want the Location %s and zendesk.url", err, ok, hint, want)
			}
			// 301 and 307 say the write belongs elsewhere: not carried out.
			if retry, _ := zendesk.Retryable(err); retry || zendesk.OutcomeUnknown(err) {
				t.Errorf("redirected write: Retryable %v, OutcomeUnknown %v; want false, false", retry, zendesk.OutcomeUnknown(err))
			}
			_, _, err = c.ListSideConversations(t.Context(), 5)
			if _, ok := zendesk.Misconfigured(err); !ok || zendesk.OutcomeUnknown(err) {
				t.Errorf("List redirected: %v; want Misconfigured, outcome known", err)
			}
			if n := elsewhere.RequestCount("total"); n != 0 {
				t.Errorf("the redirect was followed: %d requests reached its target", n)
			}
		})
	}
	t.Run("403", func(t *testing.T) {
		srv := newServer(t, zendesktest.Config{})
		hookAll(srv, "", zendesktest.Fault403)
		c := newClient(t, srv, nil)
		_, err := c.Import(t.Context(), 5, importReq("k", 1))
		if hint, ok := zendesk.Misconfigured(err); !ok || !strings.Contains(hint, "role") || !strings.Contains(hint, "threadlift check") {
			t.Errorf("403 on import: Misconfigured %v %q", ok, hint)
		}
		if !strings.Contains(err.Error(), "You do not have access") {
			t.Errorf("403 error %q does not show Zendesk's description", err)
		}
		_, _, err = c.ListSideConversations(t.Context(), 5)
		if _, ok := zendesk.Misconfigured(err); ok || !zendesk.IsStatus(err, 403) {
			t.Errorf("403 on a read: %v, Misconfigured %v; want a plain 403", err, ok)
		}
	})
}

// TestAnswerPending: only a request Zendesk may still be carrying out
// (the client's timeout, a 504) is pending; an answer, or a connection
// the server closed, is not.
func TestAnswerPending(t *testing.T) {
	for _, tc := range []struct {
		fault zendesktest.Fault
		want  bool
	}{
		{zendesktest.FaultSlowAfterCommit, true},
		{zendesktest.FaultCommitThenDrop, false},
		{zendesktest.FaultResetBeforeCommit, false},
		{zendesktest.Fault500, false},
		{zendesktest.Fault502, false},
	} {
		t.Run(tc.fault.String(), func(t *testing.T) {
			srv := newServer(t, zendesktest.Config{})
			srv.SetFaults(zendesktest.Faults{Slow: 5 * time.Second})
			hookAll(srv, "", tc.fault)
			o := srv.ClientOptions()
			// Short enough for the slow answer (5 s) to time out, long
			// enough that an answer dropped at once never does, even on a
			// loaded machine (100 ms failed commit-then-drop at load 9).
			o.Timeout = 2 * time.Second
			c, err := zendesk.New(o)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Import(t.Context(), 5, importReq("k", 1))
			if got := zendesk.AnswerPending(err); got != tc.want {
				t.Errorf("AnswerPending(%v) = %v, want %v", err, got, tc.want)
			}
		})
	}
}

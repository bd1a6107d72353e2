package zendesktest

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"

	"github.com/threadlift/threadlift/zendesk"
)

// ErrConnectionReset is what a client reaching the fake through Transport
// gets for a fault that closes the connection without an answer.
var ErrConnectionReset = errors.New("zendesktest: connection reset (in-process)")

// Transport serves each request with h (usually a *Fake) on the caller's
// goroutine, without a socket. Tests whose time is virtual
// (testing/synctest) need it: a goroutine blocked on a socket is not
// durably blocked, so the bubble's clock would not move while a
// connection is open. The client's httptrace hears that the request was
// written; a request whose context ends while h serves it fails with the
// context's error, as over a connection; a fault that closes the
// connection fails with ErrConnectionReset.
func Transport(h http.Handler) http.RoundTripper { return transport{h} }

type transport struct{ h http.Handler }

func (tr transport) RoundTrip(r *http.Request) (resp *http.Response, err error) {
	if r.Body != nil {
		defer r.Body.Close()
	}
	in := r.Clone(r.Context()) // as a server sees it
	in.Host, in.RequestURI, in.RemoteAddr = r.URL.Host, r.URL.RequestURI(), "127.0.0.1:1"
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler { // abort panics with the sentinel itself
				panic(v)
			}
			resp, err = nil, ErrConnectionReset
		}
	}()
	// The request is on its way, as far as the client can tell: a
	// connection that fails from here leaves the outcome unknown.
	if trace := httptrace.ContextClientTrace(r.Context()); trace != nil {
		if trace.WroteHeaders != nil {
			trace.WroteHeaders()
		}
		if trace.WroteRequest != nil {
			trace.WroteRequest(httptrace.WroteRequestInfo{})
		}
	}
	rec := httptest.NewRecorder()
	tr.h.ServeHTTP(rec, in)
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	return rec.Result(), nil
}

// InProcessOptions returns zendesk.Options for a client that reaches f
// through Transport (base URL http://127.0.0.1), with the credentials
// Server.ClientOptions would give.
func (f *Fake) InProcessOptions() zendesk.Options {
	o := f.credentials()
	o.BaseURL = "http://127.0.0.1"
	o.HTTPClient = &http.Client{Transport: Transport(f)}
	return o
}

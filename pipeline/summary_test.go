package pipeline

import (
	"path/filepath"
	"regexp"
	"testing"

	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// TestSummaryCountsDuplicates: a message whose Message-ID repeats one
// seen before is imported once; the summary counts the repeat as a
// duplicate, so that messages seen = imported + rejected + duplicates.
// Before, the summary had no duplicates field and the repeats went
// unexplained.
func TestSummaryCountsDuplicates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	writeMbox(t, path, mboxMsg("t1", "", 1, "one"), mboxMsg("t1r", "t1", 2, "reply"), mboxMsg("t1r", "t1", 2, "reply"), mboxMsg("t1", "", 1, "one"))
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	opts := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	sum := failuresRun(t, srv, newStore(t), opts)
	if sum.Messages != 4 || sum.EventsImported != 2 || sum.Duplicates != 2 || sum.RejectedMsgs != 0 {
		t.Errorf("summary: %d messages, %d imported, %d duplicates, %d rejected; want 4, 2, 2, 0",
			sum.Messages, sum.EventsImported, sum.Duplicates, sum.RejectedMsgs)
	}
	assertExactlyOnce(t, srv.Fake, 2)
}

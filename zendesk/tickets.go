package zendesk

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// MaxShowMany is how many ids one show_many request takes (documented).
const MaxShowMany = 100

// ShowManyTickets returns the tickets among ids that exist (and that the
// user may see): GET /api/v2/tickets/show_many?ids=1,2,3, one request per
// MaxShowMany ids. A missing ticket is simply absent from the result.
func (c *Client) ShowManyTickets(ctx context.Context, ids []int64) ([]Ticket, error) {
	var out []Ticket
	for chunk := range slices.Chunk(ids, MaxShowMany) {
		parts := make([]string, len(chunk))
		for i, id := range chunk {
			if err := checkTicketID("show many tickets", id); err != nil {
				return nil, err
			}
			parts[i] = strconv.FormatInt(id, 10)
		}
		u := c.url("/api/v2/tickets/show_many", url.Values{"ids": {strings.Join(parts, ",")}})
		var page struct {
			Tickets []Ticket `json:"tickets"`
		}
		if err := c.doJSON(ctx, KindTicketShowMany, http.MethodGet, u, false, nil, &page); err != nil {
			return nil, fmt.Errorf("zendesk: show many tickets: %w", err)
		}
		out = append(out, page.Tickets...)
	}
	return out, nil
}

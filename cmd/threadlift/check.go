package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/configs"
	"github.com/threadlift/threadlift/pipeline"
	"github.com/threadlift/threadlift/pipeline/report"
	"github.com/threadlift/threadlift/zendesk"
)

// errCheck is check's result when a check failed (exit 3).
var errCheck = errors.New("check: the account or the setup is not ready (see the FAIL lines)")

// sampleTickets is how many mapped tickets check looks up.
const sampleTickets = 20

func newCheckCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "check -c FILE",
		Short: "Preflight: config, credentials, role, side conversations, rate limit, tickets, checkpoint",
		Long: `check tells, before a long run, whether import would work. It writes nothing
anywhere: it only reads the config, the sources and the checkpoint's folder,
and sends GET requests (paced like import's).

One line per check, 'ok', 'FAIL' or 'warn', what was checked and what was
found; a FAIL line is followed by how to fix it:

  config              the config file loads (every key known and valid)
  sources             every source path matches a readable file
  credentials         the token (or OAuth) variables the config names are set
                      (their values are never printed)
  authentication      GET /api/v2/users/me accepts them; the user is an agent
                      or admin
  rate limit          the account's X-Rate-Limit against requests_per_minute
                      (warn when the config asks for more; names the plan)
  tickets             up to 20 tickets the sources map to exist (show_many)
  side conversations  the list endpoint answers 200 on one of them (403 means
                      the role, or an account without the add-on)
  checkpoint          its folder is writable and its lock free
  oauth refresh       with OAuth: the refresh settings are complete (not
                      exercised: a refresh retires both tokens)

Checks that need what failed before them are not run. A warn line does not
change the exit status.

Exit status: 0 every check passed (warnings allowed), 3 otherwise, 2 for a
usage error.`,
		Example: `  ZENDESK_API_TOKEN=... threadlift check -c threadlift.yaml
  threadlift check -c threadlift.yaml && threadlift import -c threadlift.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			c := &checker{g: g, w: tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)}
			c.run(cmd.Context(), log)
			return c.finish()
		},
	}
}

// checker runs the checks and prints their lines.
type checker struct {
	g                  *globalOptions
	w                  *tabwriter.Writer
	ok, warned, failed int
	notRun             []string
	cfg                *configs.Config
	client             *zendesk.Client
	authOK             bool
}

func (c *checker) line(status, what, detail, fix string) {
	switch status {
	case "ok":
		c.ok++
	case "warn":
		c.warned++
	case "FAIL":
		c.failed++
	}
	fmt.Fprintf(c.w, "%s\t%s\t%s\n", status, what, oneLine(detail))
	if fix != "" {
		fmt.Fprintf(c.w, "\t\t  fix: %s\n", oneLine(fix))
	}
}

// oneLine keeps an error that spans lines (a config with several
// problems) on one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func (c *checker) skip(what ...string) { c.notRun = append(c.notRun, what...) }

func (c *checker) finish() error {
	if err := c.w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.g.stdout, "check: %d ok, %d warn, %d FAIL", c.ok, c.warned, c.failed)
	if len(c.notRun) > 0 {
		fmt.Fprintf(c.g.stdout, "; not run: %s", strings.Join(c.notRun, ", "))
	}
	fmt.Fprintln(c.g.stdout)
	if c.failed > 0 {
		return errCheck
	}
	return nil
}

func (c *checker) run(ctx context.Context, log zerolog.Logger) {
	cfg, err := c.g.loadConfig()
	if err != nil {
		c.line("FAIL", "config", err.Error(), "fix the key named above; 'threadlift init' prints every key with a comment")
		c.skip("sources", "credentials", "authentication", "rate limit", "tickets", "side conversations", "checkpoint")
		return
	}
	c.cfg = cfg
	c.line("ok", "config", c.g.config, "")

	opts, srcErr := pipelineOptions(cfg, log)
	if srcErr != nil {
		c.line("FAIL", "sources", srcErr.Error(), "fix sources[].path (relative to the config's folder) or the file's permissions")
	} else {
		c.line("ok", "sources", fmt.Sprintf("%d file%s", len(opts.Sources), plural(len(opts.Sources))), "")
	}

	c.credentials(log)
	switch {
	case c.client == nil:
		c.skip("authentication", "rate limit", "tickets", "side conversations")
	default:
		c.authentication(ctx)
		c.rateLimit()
		switch {
		case !c.authOK:
			c.skip("tickets", "side conversations")
		case srcErr != nil:
			c.skip("tickets", "side conversations")
		default:
			c.tickets(ctx, opts)
		}
	}
	c.checkpoint()
	c.oauthRefresh()
}

func (c *checker) credentials(log zerolog.Logger) {
	z := c.cfg.Zendesk
	var missing []string
	if z.URL == "" {
		missing = append(missing, "zendesk.url")
	}
	if z.Email == "" {
		missing = append(missing, "zendesk.email")
	}
	if len(missing) > 0 {
		c.line("FAIL", "credentials", strings.Join(missing, " and ")+" not set", "set them in the config, or "+configs.EnvZendeskURL+" / "+configs.EnvZendeskEmail)
		return
	}
	if err := c.cfg.CheckImport(c.g.getenv); err != nil {
		fix := "export the variable the config names (its value is never printed)"
		c.line("FAIL", "credentials", err.Error(), fix)
		return
	}
	what := fmt.Sprintf("API token in $%s for %s", z.TokenEnv, z.Email)
	if z.OAuthTokenEnv != "" {
		what = fmt.Sprintf("OAuth access token in $%s", z.OAuthTokenEnv)
	}
	client, err := newZendeskClient(c.g, c.cfg, log, false)
	if err != nil {
		c.line("FAIL", "credentials", err.Error(), "")
		return
	}
	c.client = client
	c.line("ok", "credentials", what+" (set; value not shown)", "")
}

func (c *checker) authentication(ctx context.Context) {
	u, err := c.client.Me(ctx)
	switch {
	case zendesk.IsStatus(err, 401):
		fix := "the token was refused: check zendesk.email and the token (Admin Center > Apps and integrations > Zendesk API), and that zendesk.url is the right account"
		if c.cfg.Zendesk.OAuthTokenEnv != "" {
			fix = "the OAuth access token was refused (expired or revoked): get a new one. import would refresh it once with the refresh token, which retires both; check never does"
		}
		c.line("FAIL", "authentication", "GET /api/v2/users/me: 401 "+apiDetail(err), fix)
	case err != nil:
		c.line("FAIL", "authentication", "GET /api/v2/users/me: "+err.Error(), "check zendesk.url ("+c.cfg.Zendesk.URL+") and the network")
	case u.ID == 0:
		c.line("FAIL", "authentication", "GET /api/v2/users/me answered as the anonymous user: the credentials were not taken", "check zendesk.email and the token variable")
	case !u.IsAgent():
		c.line("FAIL", "authentication", fmt.Sprintf("%s <%s> has role %q", u.Name, u.Email, u.Role), "side conversations need an agent or admin: use an agent's or an admin's credentials")
	default:
		c.authOK = true
		c.line("ok", "authentication", fmt.Sprintf("%s <%s>, role %s", u.Name, u.Email, u.Role), "")
	}
}

func apiDetail(err error) string {
	var ae *zendesk.APIError
	if errors.As(err, &ae) {
		s := ae.Code
		if ae.Description != "" && ae.Description != ae.Code {
			s = strings.TrimSpace(s + ": " + ae.Description)
		}
		if ae.RequestID != "" {
			s += " (request id " + ae.RequestID + ")"
		}
		return s
	}
	return err.Error()
}

// planName names the plan an account limit looks like.
func planName(perMinute int) string {
	for _, p := range report.Plans {
		if p.RequestsPerMinute == perMinute {
			return p.Name
		}
	}
	return "no standard plan"
}

func (c *checker) rateLimit() {
	rl := c.client.RateLimit()
	want := c.cfg.Zendesk.RequestsPerMinute
	switch {
	case rl.Limit == 0:
		c.line("warn", "rate limit", "the answers carried no X-Rate-Limit header: the account's limit is unknown", "")
	case want == 0:
		c.line("warn", "rate limit", fmt.Sprintf("the account allows %d requests/min (looks like %s); requests_per_minute is 0: no client-side ceiling, import will meet 429s", rl.Limit, planName(rl.Limit)),
			fmt.Sprintf("set zendesk.requests_per_minute: %d or less (other integrations share the limit)", rl.Limit))
	case want > rl.Limit:
		c.line("warn", "rate limit", fmt.Sprintf("requests_per_minute is %d, the account allows %d (looks like %s): runs would be paused by 429s", want, rl.Limit, planName(rl.Limit)),
			fmt.Sprintf("set zendesk.requests_per_minute: %d or less (other integrations share the limit)", rl.Limit))
	default:
		c.line("ok", "rate limit", fmt.Sprintf("the account allows %d requests/min (looks like %s); requests_per_minute is %d", rl.Limit, planName(rl.Limit), want), "")
	}
}

func (c *checker) tickets(ctx context.Context, opts pipeline.Options) {
	ids, threads, err := pipeline.SampleTickets(ctx, opts, sampleTickets)
	if err != nil {
		c.line("FAIL", "tickets", "reading the sources: "+err.Error(), "run 'threadlift validate' for the details")
		c.skip("side conversations")
		return
	}
	if threads == 0 {
		c.line("warn", "tickets", "the sources hold no thread: nothing to look up", "")
		c.skip("side conversations")
		return
	}
	if len(ids) == 0 {
		c.line("FAIL", "tickets", fmt.Sprintf("none of the %d threads sampled maps to a ticket", min(threads, 4*sampleTickets)), "check mapping.ticket (header, subject_regex, lookup_csv, default_ticket_id); 'threadlift validate' lists unmapped threads")
		c.skip("side conversations")
		return
	}
	found, err := c.client.ShowManyTickets(ctx, ids)
	if err != nil {
		c.line("FAIL", "tickets", "GET /api/v2/tickets/show_many: "+err.Error(), "")
		c.skip("side conversations")
		return
	}
	exists := map[int64]bool{}
	for _, t := range found {
		exists[t.ID] = true
	}
	var missing []string
	first := int64(0)
	for _, id := range ids {
		if !exists[id] {
			missing = append(missing, fmt.Sprint(id))
		} else if first == 0 {
			first = id
		}
	}
	if len(missing) > 0 {
		c.line("FAIL", "tickets", fmt.Sprintf("%d of %d sampled mapped tickets do not exist (or the user cannot see them): %s", len(missing), len(ids), strings.Join(missing, ", ")),
			"check mapping.ticket (the ids extracted, lookup_csv) and zendesk.url: is this the right account?")
	} else {
		c.line("ok", "tickets", fmt.Sprintf("the %d sampled mapped tickets exist", len(ids)), "")
	}
	if first == 0 {
		c.skip("side conversations")
		return
	}
	c.sideConversations(ctx, first)
}

func (c *checker) sideConversations(ctx context.Context, ticket int64) {
	path := fmt.Sprintf("GET /api/v2/tickets/%d/side_conversations", ticket)
	scs, _, err := c.client.ListSideConversations(ctx, ticket)
	switch {
	case zendesk.IsStatus(err, 403):
		c.line("FAIL", "side conversations", path+": 403 "+apiDetail(err),
			"the account needs side conversations (the Collaboration add-on, or a plan that includes it) and the user a role that may use them")
	case zendesk.IsStatus(err, 404):
		c.line("FAIL", "side conversations", path+": 404 "+apiDetail(err), "side conversations may not be enabled: Admin Center > Objects and rules > Tickets > Settings > Side conversations")
	case err != nil:
		c.line("FAIL", "side conversations", path+": "+err.Error(), "")
	default:
		c.line("ok", "side conversations", fmt.Sprintf("%s: 200 (%d side conversations)", path, len(scs)), "")
	}
}

func (c *checker) checkpoint() {
	path := c.cfg.Checkpoint.Path
	shown := path
	if wd, err := os.Getwd(); err == nil {
		shown = displayPath(wd, path) // as the user would type it
	}
	p, err := checkpoint.ProbePath(path)
	switch {
	case errors.Is(err, checkpoint.ErrLocked):
		c.line("FAIL", "checkpoint", fmt.Sprintf("%s: locked by %s", shown, p.Holder), "another import, retry or verify --adopt is running on it: wait for it to end")
		return
	case err != nil:
		c.line("FAIL", "checkpoint", err.Error(), "make the folder writable by this user, or set checkpoint.path (or "+configs.EnvCheckpoint+")")
		return
	}
	if !p.Exists {
		c.line("ok", "checkpoint", fmt.Sprintf("%s: folder writable, lock free; created by the first import", shown), "")
		return
	}
	c.line("ok", "checkpoint", fmt.Sprintf("%s: a threadlift checkpoint, writable, lock free", shown), "")
}

func (c *checker) oauthRefresh() {
	z := c.cfg.Zendesk
	if z.OAuthTokenEnv == "" {
		return // API-token auth: nothing to refresh
	}
	if z.OAuthRefreshTokenEnv == "" {
		c.line("warn", "oauth refresh", "not configured: when the access token expires, a run stops with exit 3",
			"set zendesk.oauth_refresh_token_env, oauth_client_id and oauth_client_secret_env")
		return
	}
	var missing []string
	if c.g.getenv(z.OAuthRefreshTokenEnv) == "" {
		missing = append(missing, "$"+z.OAuthRefreshTokenEnv+" is not set")
	}
	if z.OAuthClientID == "" {
		missing = append(missing, "zendesk.oauth_client_id is empty")
	}
	if z.OAuthClientSecretEnv == "" {
		missing = append(missing, "zendesk.oauth_client_secret_env is empty")
	} else if c.g.getenv(z.OAuthClientSecretEnv) == "" {
		missing = append(missing, "$"+z.OAuthClientSecretEnv+" is not set")
	}
	if len(missing) > 0 {
		c.line("FAIL", "oauth refresh", strings.Join(missing, "; "), "set them: import refreshes the access token once, on its first 401")
		return
	}
	c.line("ok", "oauth refresh", fmt.Sprintf("configured (client %s, refresh token in $%s); not exercised: a refresh retires both tokens, so it is left to import's first 401", z.OAuthClientID, z.OAuthRefreshTokenEnv), "")
}

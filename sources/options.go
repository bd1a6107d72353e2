package sources

import (
	"errors"
	"time"
)

// DefaultMaxMessageBytes is the default Options.MaxMessageBytes (25 MiB).
const DefaultMaxMessageBytes = 25 << 20

// Options configures a source reader. The zero value means defaults.
type Options struct {
	// MaxMessageBytes is the largest raw record accepted; larger records get
	// an error Issue "too-large". 0 means DefaultMaxMessageBytes.
	MaxMessageBytes int64
	// Name is what Location.File shows; default: the path as given.
	Name string
	// Now is used for the "more than a day in the future" date check;
	// default time.Now.
	Now func() time.Time
	// Fields renames the default field names of csv/json records
	// (contract §3); mbox ignores it.
	Fields map[string]string
	// ThreadKeyPrefix is put before the thread_id and message_id of
	// csv/json records, and into their content hash (Record.Envelope), so
	// that two exports numbering their conversations alike stay apart;
	// mbox ignores it.
	ThreadKeyPrefix string
	// DefaultRecipient says the run posts a message without recipient to
	// mapping.default_recipient: a csv/json record without to is then not
	// rejected by the record rules (the mapping fills it, with a warning).
	DefaultRecipient bool

	// Format holds the options of one format only (maildir folders, mbox
	// Gmail threading, json messages_path); each format reads its own
	// and ignores the others.
	Format FormatOptions
}

// FormatOptions are the source options that only one format reads. The
// zero value means each format's defaults.
type FormatOptions struct {
	// Folders (maildir) lists the Maildir++ folders read: "INBOX" is the
	// root's own cur/ and new/, ".Sent" a subfolder; ["all"] reads the
	// root and every subfolder. Default: INBOX alone.
	Folders []string
	// ThreadBy (mbox) is how messages are threaded: "" or ThreadByJWZ
	// (Message-ID, In-Reply-To, References), or ThreadByGmail: by the
	// X-GM-THRID header of Gmail Takeout, thread key "gmail:" + its value.
	ThreadBy string
	// SkipLabels (mbox) leaves out messages whose X-Gmail-Labels holds
	// one of these labels (case-insensitive); they are counted (Skipper).
	SkipLabels []string
	// MessagesPath (json) is the dotted path of a thread object's
	// messages array ("item.threads"); default "messages".
	MessagesPath string
}

// Values of FormatOptions.ThreadBy.
const (
	ThreadByJWZ   = "jwz"
	ThreadByGmail = "gmail"
)

// Skipper is implemented by readers that leave records out on purpose
// (mbox skip_labels). Skipped says how many, by reason ("label Spam"),
// once Next has returned io.EOF; the run reports them, so that nothing is
// left out silently.
type Skipper interface {
	Skipped() map[string]int
}

// WithDefaults returns o with its zero fields set to their defaults, Name
// to path. Every reader applies it when it is opened.
func (o Options) WithDefaults(path string) Options {
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if o.Name == "" {
		o.Name = path
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// ErrClosed is returned by Next and Load after Close.
var ErrClosed = errors.New("sources: reader is closed")

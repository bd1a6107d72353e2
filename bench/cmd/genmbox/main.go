// Command genmbox writes a deterministic synthetic mbox archive for the
// performance benchmarks (make bench). The same -seed and -size always give
// the same bytes. The file is written as a stream: memory stays small
// whatever the size.
//
//	genmbox -o big.mbox -size 1GB -seed 1          # realistic mix
//	genmbox -o small.mbox -kind small -threads 100000 -seed 1
//
// The realistic mix: threads of 1–40 messages interleaved in date order,
// plain text, multipart/alternative and HTML-only messages, bodies in
// UTF-8, US-ASCII and legacy charsets (iso-8859-1, windows-1252, koi8-r,
// windows-1251, iso-8859-2, iso-2022-jp, shift_jis, gb2312, big5) sent as
// quoted-printable, base64 or 8bit, RFC 2047 encoded subjects and names,
// quoted replies, and base64 attachments holding about 45% of the bytes.
// "small" writes threads of one short plain message each, every thread on
// its own ticket, for the client and resume benchmarks.
//
// Every message carries "[#TICKET]" in its subject and an
// X-Zendesk-Ticket-Id header, so that every thread maps to a ticket.
// Output goes to -o.tmp first and is renamed at the end.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
)

func main() {
	var (
		out      = flag.String("o", "", "output file (required)")
		sizeStr  = flag.String("size", "100MB", "approximate size of the realistic archive (B, KB, MB, GB = powers of 1000; KiB, MiB, GiB)")
		seed     = flag.Uint64("seed", 1, "random seed")
		kind     = flag.String("kind", "realistic", "realistic | small")
		threads  = flag.Int("threads", 1000, "small: number of threads (one message each)")
		firstTkt = flag.Int("first-ticket", 1000, "small: ticket id of the first thread (then +1 per thread)")
		attShare = flag.Float64("attachment-share", 0.45, "realistic: share of the file's bytes in attachments")
		messages = flag.Int("messages", 0, "realistic: write this many messages into -o instead of -size bytes")
		appendO  = flag.String("append-o", "", "realistic with -messages: also write what arrives next (-append-messages more) into this file, some of it replies to old threads")
		appendN  = flag.Int("append-messages", 0, "realistic with -append-o: messages of the appended part (then its open threads get one closing message each)")
	)
	flag.Parse()
	if *out == "" || (*appendO != "" && *messages <= 0) {
		fmt.Fprintln(os.Stderr, "genmbox: -o is required; -append-o needs -messages")
		os.Exit(2)
	}
	size, err := ParseSize(*sizeStr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "genmbox:", err)
		os.Exit(2)
	}
	o, err := createOutput(*out)
	var tail *output
	if err == nil && *appendO != "" {
		tail, err = createOutput(*appendO)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "genmbox:", err)
		os.Exit(1)
	}
	var st, tst stats
	switch *kind {
	case "realistic":
		g := newGen(*seed, o.w, *attShare)
		switch {
		case tail != nil:
			st, tst = g.runSplit(*messages, *appendN, tail.w)
		case *messages > 0:
			st, _ = g.runSplit(*messages, 0, nil)
		default:
			g.run(size)
			st = g.st
		}
	case "small":
		st = writeSmall(o.w, *seed, *threads, *firstTkt)
	default:
		fmt.Fprintf(os.Stderr, "genmbox: unknown -kind %q\n", *kind)
		os.Exit(2)
	}
	err = o.finish()
	if tail != nil {
		err = errors.Join(err, tail.finish())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "genmbox:", err)
		os.Exit(1)
	}
	// One machine-readable line for the orchestrator.
	fmt.Printf("bytes=%d messages=%d threads=%d attachment_bytes=%d attachments=%d html_only=%d legacy_charset=%d",
		o.cw.n, st.messages, st.threads, st.attBytes, st.attachments, st.htmlOnly, st.legacy)
	if tail != nil {
		fmt.Printf(" append_bytes=%d append_messages=%d append_new_threads=%d append_old_threads=%d",
			tail.cw.n, tst.messages, tst.threads, tst.reopened)
	}
	fmt.Println()
}

// output is a file written to name.tmp, renamed to name when complete.
type output struct {
	name string
	f    *os.File
	cw   *countWriter
	w    *bufio.Writer
}

func createOutput(name string) (*output, error) {
	f, err := os.Create(name + ".tmp")
	if err != nil {
		return nil, err
	}
	cw := &countWriter{w: f}
	return &output{name: name, f: f, cw: cw, w: bufio.NewWriterSize(cw, 1<<20)}, nil
}

func (o *output) finish() error {
	err := o.w.Flush()
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	if o.cw.err != nil {
		err = o.cw.err
	}
	if err == nil {
		err = os.Rename(o.name+".tmp", o.name)
	}
	if err != nil {
		os.Remove(o.name + ".tmp")
	}
	return err
}

// ParseSize parses "1GB", "100MB", "512MiB", "12345".
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suf string
		mul int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"B", 1}}
	mul := int64(1)
	for _, u := range units {
		if strings.HasSuffix(strings.ToUpper(s), strings.ToUpper(u.suf)) && (len(u.suf) != 3 || strings.HasSuffix(s, u.suf)) {
			s, mul = strings.TrimSpace(s[:len(s)-len(u.suf)]), u.mul
			break
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return int64(v * float64(mul)), nil
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}

type stats struct {
	messages, threads, attachments, htmlOnly, legacy int
	reopened                                         int // appended part: old threads that got a reply
	attBytes                                         int64
}

// ---------------------------------------------------------------------------
// languages and charsets

type lang struct {
	name  string
	words []string
	// charsets this language is sent in, with weights
	charsets []csChoice
}

type csChoice struct {
	name   string
	weight float64
}

var latinWords = strings.Fields(`the a to of and in for on is that with this it we you be have are from your as at
please order ticket account invoice payment update shipping delivery refund request issue problem customer support
team thanks regards hello hi again attached file report today tomorrow week month
could would should will can need see check confirm received send sent reply question answer help price quote
contract renewal license server error login password reset email phone call meeting schedule note details
number reference status pending resolved closed open new old change cancel return replace item product service`)

var westernWords = strings.Fields(`café naïve über Müller Straße größe déjà vu façade garçon crème brûlée
rendez-vous résumé señor año mañana João São Paulo Zürich Köln Göteborg Ærø smørrebrød fiancé coöperate
bitte danke schön merci beaucoup très bien gracias por favor cordialement grüße freundliche bonjour
facture commande livraison remboursement Rechnung Bestellung Lieferung Rückerstattung pedido envío`)

var w1252Extra = strings.Fields(`“quoted” ‘single’ — – … € ™ •`)

var russianWords = strings.Fields(`привет спасибо заказ счёт оплата доставка возврат вопрос ответ пожалуйста
здравствуйте клиент поддержка проблема ошибка договор письмо файл вложение сегодня завтра неделя
номер статус отправлено получено подтвердите цена товар услуга менеджер команда уважением`)

var polishWords = strings.Fields(`dzień dobry dziękuję zamówienie faktura płatność dostawa zwrot pytanie
odpowiedź proszę klient wsparcie problem błąd umowa wiadomość plik załącznik dziś jutro tydzień
żółć gęślą jaźń Łódź Kraków Wrocław Gdańsk pozdrawiam serdecznie`)

var japaneseWords = strings.Fields(`こんにちは ありがとう ございます 注文 請求書 支払い 配送 返金 質問 回答
お願いします お客様 サポート 問題 エラー 契約 メール ファイル 添付 今日 明日 週 番号 状態
送信 受信 確認 価格 商品 サービス 担当者 よろしく 東京 大阪`)

var chineseSimplified = strings.Fields(`你好 谢谢 订单 发票 付款 配送 退款 问题 回答 请 客户 支持 错误 合同
邮件 文件 附件 今天 明天 星期 号码 状态 发送 收到 确认 价格 商品 服务 北京 上海`)

var chineseTraditional = strings.Fields(`你好 謝謝 訂單 發票 付款 配送 退款 問題 回答 請 客戶 支援 錯誤 合約
郵件 檔案 附件 今天 明天 星期 號碼 狀態 發送 收到 確認 價格 商品 服務 台北 高雄`)

var langs = []struct {
	l      lang
	weight float64
}{
	{lang{"en", latinWords, []csChoice{{"us-ascii", 3}, {"utf-8", 5}}}, 45},
	{lang{"western", append(append([]string{}, latinWords...), westernWords...), []csChoice{{"iso-8859-1", 4}, {"windows-1252", 3}, {"utf-8", 3}}}, 20},
	{lang{"ru", russianWords, []csChoice{{"koi8-r", 4}, {"windows-1251", 3}, {"utf-8", 3}}}, 10},
	{lang{"pl", polishWords, []csChoice{{"iso-8859-2", 5}, {"utf-8", 5}}}, 6},
	{lang{"ja", japaneseWords, []csChoice{{"iso-2022-jp", 5}, {"shift_jis", 2}, {"utf-8", 3}}}, 10},
	{lang{"zh-hans", chineseSimplified, []csChoice{{"gb2312", 5}, {"utf-8", 5}}}, 5},
	{lang{"zh-hant", chineseTraditional, []csChoice{{"big5", 5}, {"utf-8", 5}}}, 4},
}

func charsetEncoding(name string) encoding.Encoding {
	switch name {
	case "iso-8859-1":
		return charmap.ISO8859_1
	case "windows-1252":
		return charmap.Windows1252
	case "koi8-r":
		return charmap.KOI8R
	case "windows-1251":
		return charmap.Windows1251
	case "iso-8859-2":
		return charmap.ISO8859_2
	case "iso-2022-jp":
		return japanese.ISO2022JP
	case "shift_jis":
		return japanese.ShiftJIS
	case "gb2312":
		return simplifiedchinese.GBK
	case "big5":
		return traditionalchinese.Big5
	}
	return nil // us-ascii, utf-8
}

// ---------------------------------------------------------------------------
// the realistic generator

type thread struct {
	id       int
	ticket   int
	left     int // messages still to write
	n        int // messages written
	subject  string
	lang     lang
	charset  string
	people   []person
	ids      []string // Message-IDs so far
	lastBody string   // for quoting
	asciiOK  bool
}

type person struct{ name, email string }

type gen struct {
	r        *rand.Rand
	fill     *rand.ChaCha8
	w        *bufio.Writer
	attShare float64

	now      time.Time
	nextID   int
	open     []*thread
	st       stats
	written  int64 // bytes written (approx: we count what we write)
	attWrite int64 // of which attachment bytes (encoded)

	// timeScale, when set, scales the time between messages (runSplit:
	// the archive ends before 2026, so that no date is in the future).
	timeScale float64

	// runSplit: after split messages, g.w is the appended part's writer;
	// closed threads are sampled into old, some of which the appended
	// part answers.
	old []*thread

	buf  bytes.Buffer // one message, built then written
	text strings.Builder
	raw  []byte
}

func newGen(seed uint64, w *bufio.Writer, attShare float64) *gen {
	var key [32]byte
	for i := range key {
		key[i] = byte(seed >> (8 * (i % 8)))
		key[i] ^= byte(i * 31)
	}
	return &gen{
		r:        rand.New(rand.NewPCG(seed, 0x7468726561646c69)),
		fill:     rand.NewChaCha8(key),
		w:        w,
		attShare: attShare,
		now:      time.Date(2016, 1, 4, 8, 0, 0, 0, time.UTC),
	}
}

func (g *gen) pick(ws []string) string { return ws[g.r.IntN(len(ws))] }

func (g *gen) run(size int64) {
	const maxOpen = 48
	for g.written < size || len(g.open) > 0 {
		starting := g.written < size
		if starting && (len(g.open) == 0 || (len(g.open) < maxOpen && g.r.Float64() < 0.35)) {
			g.open = append(g.open, g.newThread())
		}
		if len(g.open) == 0 {
			break
		}
		i := g.r.IntN(len(g.open))
		t := g.open[i]
		if !starting && t.left > 1 {
			t.left = 1 // past the target size: close threads quickly
		}
		g.message(t)
		if t.left == 0 {
			g.open[i] = g.open[len(g.open)-1]
			g.open = g.open[:len(g.open)-1]
		}
	}
}

// runSplit writes split messages into g.w, then switches to tail and
// writes appended more, as the same stream of threads goes on: threads
// open at the switch get their replies in the tail, and about one new
// thread in eight there is a reply to an old, closed thread (a sample of
// them is kept). It returns the stats of both parts.
func (g *gen) runSplit(split, appended int, tail *bufio.Writer) (base, app stats) {
	const maxOpen, keepOld = 48, 512
	total := split + appended
	// About 26 minutes between messages on average: scale the steps so
	// that the whole stream ends by 2025 (the threads open at its end take
	// up to 48 messages more).
	if span, need := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC).Sub(g.now), time.Duration(total+48)*(26*time.Minute); need > span {
		g.timeScale = float64(span) / float64(need)
	}
	closed := 0
	for g.st.messages < total || len(g.open) > 0 {
		if g.st.messages == split && tail != nil && g.w != tail {
			base = g.st
			g.w, g.st = tail, stats{}
			total = appended
		}
		starting := g.st.messages < total
		if starting && (len(g.open) == 0 || (len(g.open) < maxOpen && g.r.Float64() < 0.35)) {
			g.open = append(g.open, g.startOrReopen(base.messages > 0))
		}
		if len(g.open) == 0 {
			break
		}
		i := g.r.IntN(len(g.open))
		t := g.open[i]
		if !starting && t.left > 1 {
			t.left = 1
		}
		g.message(t)
		if t.left == 0 {
			g.open[i] = g.open[len(g.open)-1]
			g.open = g.open[:len(g.open)-1]
			// reservoir sample of closed threads
			closed++
			if len(g.old) < keepOld {
				g.old = append(g.old, t)
			} else if j := g.r.IntN(closed); j < keepOld {
				g.old[j] = t
			}
		}
	}
	if base.messages == 0 {
		return g.st, stats{}
	}
	return base, g.st
}

// startOrReopen starts a thread or, in the appended part, now and then
// reopens an old one: its next message replies to its last.
func (g *gen) startOrReopen(appending bool) *thread {
	if appending && len(g.old) > 0 && g.r.IntN(8) == 0 {
		j := g.r.IntN(len(g.old))
		t := g.old[j]
		g.old[j] = g.old[len(g.old)-1]
		g.old = g.old[:len(g.old)-1]
		t.left = 1 + g.r.IntN(2)
		g.st.reopened++
		return t
	}
	return g.newThread()
}

// threadLen draws 1..40: about 35% single messages, a long tail.
func (g *gen) threadLen() int {
	switch x := g.r.Float64(); {
	case x < 0.35:
		return 1
	case x < 0.90:
		return 2 + int(g.r.ExpFloat64()*3)%9 // 2..10
	default:
		return 11 + g.r.IntN(30) // 11..40
	}
}

func (g *gen) newThread() *thread {
	g.st.threads++
	t := &thread{id: g.st.threads, ticket: 10000 + g.r.IntN(60000), left: g.threadLen()}
	w := 0.0
	for _, l := range langs {
		w += l.weight
	}
	x := g.r.Float64() * w
	for _, l := range langs {
		if x -= l.weight; x < 0 {
			t.lang = l.l
			break
		}
	}
	if t.lang.name == "" {
		t.lang = langs[0].l
	}
	cw := 0.0
	for _, c := range t.lang.charsets {
		cw += c.weight
	}
	x = g.r.Float64() * cw
	for _, c := range t.lang.charsets {
		if x -= c.weight; x < 0 {
			t.charset = c.name
			break
		}
	}
	if t.charset == "" {
		t.charset = "utf-8"
	}
	if t.charset == "us-ascii" {
		t.asciiOK = true
	}
	np := 2 + g.r.IntN(3)
	for i := 0; i < np; i++ {
		first := g.pick(firstNames)
		last := g.pick(lastNames)
		if t.lang.name != "en" && g.r.IntN(2) == 0 {
			last = g.pick(t.lang.words) // a name in the thread's script
		}
		dom := g.pick(domains)
		t.people = append(t.people, person{first + " " + last, fmt.Sprintf("%s.%s%d@%s", strings.ToLower(first), asciiOnly(last, "x"), g.r.IntN(100), dom)})
	}
	var sb strings.Builder
	for i, n := 0, 3+g.r.IntN(6); i < n; i++ {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(g.pick(t.lang.words))
	}
	t.subject = sb.String()
	return t
}

var firstNames = strings.Fields(`Anna Bob Carla David Elena Frank Grace Hiro Ivan Julia Karl Lena Marco Nina Omar Petra Quinn Rosa Sven Tara Umar Vera Wei Xena Yuki Zoe`)
var lastNames = strings.Fields(`Smith Jones Brown Garcia Miller Davis Wilson Moore Taylor Anderson Thomas Lee Martin Clark Lewis Walker Young King Wright Scott`)
var domains = strings.Fields(`example.com example.org example.net acme-corp.example globex.example initech.example umbrella.example mail.example.co.uk`)

func asciiOnly(s, fallback string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r < 128 && (r >= 'a' && r <= 'z') {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return fallback
	}
	return b.String()
}

// paragraphs appends n words of running text, wrapped at ~72 columns.
func (g *gen) paragraphs(sb *strings.Builder, l lang, words int, w1252 bool) {
	col := 0
	for i := 0; i < words; i++ {
		var w string
		if w1252 && g.r.IntN(40) == 0 {
			w = g.pick(w1252Extra)
		} else {
			w = g.pick(l.words)
		}
		if col > 0 && col+1+len(w) > 72 {
			if g.r.IntN(7) == 0 {
				sb.WriteString(".\n\n")
			} else {
				sb.WriteByte('\n')
			}
			col = 0
		} else if col > 0 {
			sb.WriteByte(' ')
			col++
		}
		sb.WriteString(w)
		col += utf8.RuneCountInString(w)
	}
	sb.WriteString(".\n")
}

// message writes the next message of t. The order of the random draws
// is the archive's: text, structure, headers, parts.
func (g *gen) message(t *thread) {
	g.st.messages++
	if t.charset != "us-ascii" && t.charset != "utf-8" {
		g.st.legacy++
	}
	step := time.Duration(1+g.r.IntN(50))*time.Minute + time.Duration(g.r.IntN(60))*time.Second
	if g.timeScale > 0 {
		step = time.Duration(float64(step) * g.timeScale)
	}
	g.now = g.now.Add(step)
	from := t.people[t.n%len(t.people)]
	to := t.people[(t.n+1)%len(t.people)]
	g.nextID++
	id := fmt.Sprintf("<%d.%x.%d@%s>", g.nextID, g.r.Uint32(), t.id, strings.SplitN(from.email, "@", 2)[1])
	body := g.messageText(t, from, to)

	// the structure
	kind := g.r.Float64()
	wantAtt := g.attShare > 0 && float64(g.attWrite) < g.attShare*float64(g.written+1)
	attach := wantAtt && g.r.Float64() < 0.5
	g.buf.Reset()
	b := &g.buf
	g.headers(b, t, from, to, id)
	g.parts(b, t, body, kind, attach)
	b.WriteString("\n") // the empty line before the next From line

	g.write(b.Bytes())
	t.ids = append(t.ids, id)
	t.n++
	t.left--
}

// messageText is the text of t's next message from from to to: a
// greeting in replies, paragraphs, a signature and often the previous
// message quoted. t keeps its own text, for the next reply to quote.
func (g *gen) messageText(t *thread, from, to person) string {
	g.text.Reset()
	if t.n > 0 {
		g.text.WriteString(g.pick(t.lang.words) + " " + strings.Split(from.name, " ")[0] + ",\n\n")
	}
	g.paragraphs(&g.text, t.lang, 30+int(g.r.ExpFloat64()*120), t.charset == "windows-1252")
	g.text.WriteString("\n-- \n" + from.name + "\n")
	if t.n > 0 && t.lastBody != "" && g.r.IntN(4) != 0 {
		g.text.WriteString("\nOn " + g.now.Add(-time.Hour).Format(time.RFC1123Z) + ", " + to.name + " wrote:\n")
		lines := strings.Split(t.lastBody, "\n")
		if len(lines) > 60 {
			lines = lines[:60]
		}
		for _, l := range lines {
			g.text.WriteString("> " + l + "\n")
		}
	}
	body := g.text.String()
	own := body
	if i := strings.Index(own, "\nOn "); i > 0 {
		own = own[:i]
	}
	t.lastBody = own
	return body
}

// headers writes the From line and the header of t's next message.
func (g *gen) headers(b *bytes.Buffer, t *thread, from, to person, id string) {
	fmt.Fprintf(b, "From %s %s\n", from.email, g.now.Format("Mon Jan _2 15:04:05 2006"))
	fmt.Fprintf(b, "Return-Path: <%s>\n", from.email)
	fmt.Fprintf(b, "Received: from mx%d.%s (mx%d.%s [192.0.2.%d])\n\tby mail.example.com with ESMTPS id %x\n\tfor <%s>; %s\n",
		g.r.IntN(9), domains[g.r.IntN(len(domains))], g.r.IntN(9), domains[g.r.IntN(len(domains))], g.r.IntN(250), g.r.Uint64(), to.email, g.now.Format(time.RFC1123Z))
	fmt.Fprintf(b, "From: %s <%s>\n", g.encodeWord(t, from.name), from.email)
	fmt.Fprintf(b, "To: %s <%s>\n", g.encodeWord(t, to.name), to.email)
	if len(t.people) > 2 && g.r.IntN(3) == 0 {
		c := t.people[(t.n+2)%len(t.people)]
		fmt.Fprintf(b, "Cc: %s <%s>\n", g.encodeWord(t, c.name), c.email)
	}
	subj := fmt.Sprintf("[#%d] %s", t.ticket, t.subject)
	if t.n > 0 {
		subj = "Re: " + subj
	}
	fmt.Fprintf(b, "Subject: %s\n", g.encodeWord(t, subj))
	fmt.Fprintf(b, "Date: %s\n", g.now.Format(time.RFC1123Z))
	fmt.Fprintf(b, "Message-ID: %s\n", id)
	if t.n > 0 {
		writeReferences(b, t.ids)
	}
	fmt.Fprintf(b, "X-Zendesk-Ticket-Id: %d\n", t.ticket)
	fmt.Fprintf(b, "X-Mailer: %s\n", g.pick(mailers))
	b.WriteString("MIME-Version: 1.0\n")
}

// writeReferences writes In-Reply-To and References of a reply to the
// last of ids: the first and the last nine when there are more than ten.
func writeReferences(b *bytes.Buffer, ids []string) {
	fmt.Fprintf(b, "In-Reply-To: %s\n", ids[len(ids)-1])
	refs := ids
	if len(refs) > 10 {
		refs = append([]string{refs[0]}, refs[len(refs)-9:]...)
	}
	b.WriteString("References:")
	for i, r := range refs {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(" " + r)
	}
	b.WriteString("\n")
}

// parts writes the body of the message: with attachments, or by kind
// plain, HTML only, multipart/related or multipart/alternative.
func (g *gen) parts(b *bytes.Buffer, t *thread, body string, kind float64, attach bool) {
	switch {
	case attach:
		bd := g.boundary()
		fmt.Fprintf(b, "Content-Type: multipart/mixed; boundary=\"%s\"\n\nThis is a multi-part message in MIME format.\n\n--%s\n", bd, bd)
		if kind < 0.4 {
			g.alternative(b, t, body)
		} else {
			g.textPart(b, t, "text/plain", body)
		}
		for i, n := 0, 1+g.extraAttachments(); i < n; i++ {
			fmt.Fprintf(b, "\n--%s\n", bd)
			g.attachment(b)
		}
		fmt.Fprintf(b, "\n--%s--\n", bd)
	case kind < 0.50:
		g.textPart(b, t, "text/plain", body)
	case kind < 0.62:
		g.st.htmlOnly++
		g.textPart(b, t, "text/html", toHTML(body))
	case kind < 0.67:
		// multipart/related: HTML with an inline image
		bd := g.boundary()
		cid := fmt.Sprintf("img%d@%s", g.nextID, "example.com")
		fmt.Fprintf(b, "Content-Type: multipart/related; boundary=\"%s\"; type=\"text/html\"\n\n--%s\n", bd, bd)
		g.textPart(b, t, "text/html", toHTML(body)+"<p><img src=\"cid:"+cid+"\"></p>\n")
		fmt.Fprintf(b, "\n--%s\n", bd)
		g.binaryPart(b, "image/png", "logo.png", "inline", cid, 2000+g.r.IntN(12000))
		fmt.Fprintf(b, "\n--%s--\n", bd)
		g.st.htmlOnly++
	default:
		g.alternative(b, t, body)
	}
}

var mailers = []string{"Microsoft Outlook 16.0", "Apple Mail (2.3654)", "Mozilla Thunderbird 115.0", "Roundcube Webmail/1.6", "Zimbra 9.0", "Lotus Notes Release 9.0.1"}

func (g *gen) extraAttachments() int {
	if g.r.IntN(4) == 0 {
		return 1 + g.r.IntN(3)
	}
	return 0
}

func (g *gen) boundary() string {
	return fmt.Sprintf("----=_Part_%d_%x.%d", g.r.IntN(1000000), g.r.Uint64(), g.nextID)
}

func (g *gen) alternative(b *bytes.Buffer, t *thread, body string) {
	bd := g.boundary()
	fmt.Fprintf(b, "Content-Type: multipart/alternative; boundary=\"%s\"\n\n--%s\n", bd, bd)
	g.textPart(b, t, "text/plain", body)
	fmt.Fprintf(b, "\n--%s\n", bd)
	g.textPart(b, t, "text/html", toHTML(body))
	fmt.Fprintf(b, "\n--%s--\n", bd)
}

// textPart writes the Content-* header lines, a blank line and the
// encoded text (no trailing newline beyond the text's own).
func (g *gen) textPart(b *bytes.Buffer, t *thread, ct, text string) {
	cs := t.charset
	raw := []byte(text)
	if enc := charsetEncoding(cs); enc != nil {
		if e, err := enc.NewEncoder().Bytes(raw); err == nil {
			raw = e
		} else {
			cs = "utf-8" // not representable: send UTF-8
		}
	}
	cte := "7bit"
	if !isASCII(raw) || cs == "iso-2022-jp" {
		switch x := g.r.IntN(10); {
		case cs == "iso-2022-jp" && x < 7:
			cte = "7bit"
		case x < 5:
			cte = "quoted-printable"
		case x < 8:
			cte = "base64"
		default:
			cte = "8bit"
		}
	} else if g.r.IntN(8) == 0 {
		cte = "quoted-printable"
	}
	fmt.Fprintf(b, "Content-Type: %s; charset=\"%s\"\nContent-Transfer-Encoding: %s\n\n", ct, cs, cte)
	switch cte {
	case "quoted-printable":
		qw := quotedprintable.NewWriter(b)
		qw.Write(raw)
		qw.Close()
		b.WriteByte('\n')
	case "base64":
		writeBase64(b, raw)
	default:
		writeEscaped(b, raw)
	}
}

// writeEscaped writes body lines, escaping "From " lines (mboxrd/mboxo).
func writeEscaped(b *bytes.Buffer, raw []byte) {
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		line := raw
		if i >= 0 {
			line, raw = raw[:i+1], raw[i+1:]
		} else {
			raw = nil
		}
		if bytes.HasPrefix(line, []byte("From ")) {
			b.WriteByte('>')
		}
		b.Write(line)
	}
	if b.Len() > 0 && b.Bytes()[b.Len()-1] != '\n' {
		b.WriteByte('\n')
	}
}

func writeBase64(b *bytes.Buffer, raw []byte) {
	var line [76]byte
	for len(raw) > 0 {
		n := min(57, len(raw))
		base64.StdEncoding.Encode(line[:], raw[:n])
		b.Write(line[:base64.StdEncoding.EncodedLen(n)])
		b.WriteByte('\n')
		raw = raw[n:]
	}
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

func toHTML(text string) string {
	var sb strings.Builder
	sb.Grow(len(text) + len(text)/4 + 200)
	sb.WriteString("<html><head><meta http-equiv=\"Content-Type\" content=\"text/html\"></head>\n<body style=\"font-family: Arial, sans-serif; font-size: 11pt\">\n")
	quote := false
	for _, para := range strings.Split(text, "\n\n") {
		lines := strings.Split(para, "\n")
		q := len(lines) > 0 && strings.HasPrefix(lines[0], "> ")
		if q && !quote {
			sb.WriteString("<blockquote style=\"margin:0 0 0 .8ex;border-left:1px #ccc solid;padding-left:1ex\">\n")
		} else if !q && quote {
			sb.WriteString("</blockquote>\n")
		}
		quote = q
		sb.WriteString("<p>")
		for i, l := range lines {
			if i > 0 {
				sb.WriteString("<br>\n")
			}
			l = strings.TrimPrefix(l, "> ")
			l = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(l)
			sb.WriteString(l)
		}
		sb.WriteString("</p>\n")
	}
	if quote {
		sb.WriteString("</blockquote>\n")
	}
	sb.WriteString("</body></html>\n")
	return sb.String()
}

var attTypes = []struct {
	ct, ext string
	weight  int
	median  float64 // bytes
}{
	{"application/pdf", "pdf", 30, 120e3},
	{"image/jpeg", "jpg", 25, 180e3},
	{"image/png", "png", 15, 60e3},
	{"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx", 10, 40e3},
	{"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx", 8, 30e3},
	{"application/zip", "zip", 5, 400e3},
	{"text/csv", "csv", 7, 20e3},
}

func (g *gen) attachment(b *bytes.Buffer) {
	tw := 0
	for _, a := range attTypes {
		tw += a.weight
	}
	x := g.r.IntN(tw)
	a := attTypes[0]
	for _, c := range attTypes {
		if x -= c.weight; x < 0 {
			a = c
			break
		}
	}
	size := int(a.median * math.Exp(g.r.NormFloat64()*0.9))
	size = max(300, min(size, 4<<20))
	name := fmt.Sprintf("%s_%d.%s", g.pick([]string{"invoice", "scan", "report", "photo", "contract", "export", "IMG", "Rechnung", "документ", "資料"}), g.r.IntN(100000), a.ext)
	if a.ct == "text/csv" {
		g.csvPart(b, name, size)
		return
	}
	g.binaryPart(b, a.ct, name, "attachment", "", size)
}

// binaryPart writes a base64 part of size pseudo-random bytes.
func (g *gen) binaryPart(b *bytes.Buffer, ct, name, disp, cid string, size int) {
	g.st.attachments++
	fn := name
	if !isASCII([]byte(name)) {
		fn = mime.BEncoding.Encode("utf-8", name)
	}
	fmt.Fprintf(b, "Content-Type: %s; name=\"%s\"\nContent-Transfer-Encoding: base64\nContent-Disposition: %s; filename=\"%s\"\n", ct, fn, disp, fn)
	if cid != "" {
		fmt.Fprintf(b, "Content-ID: <%s>\n", cid)
	}
	b.WriteByte('\n')
	if cap(g.raw) < size {
		g.raw = make([]byte, size)
	}
	raw := g.raw[:size]
	g.fill.Read(raw)
	// a recognisable magic number, as real files have
	switch ct {
	case "application/pdf":
		copy(raw, "%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
	case "image/png":
		copy(raw, "\x89PNG\r\n\x1a\n")
	case "image/jpeg":
		copy(raw, "\xff\xd8\xff\xe0\x00\x10JFIF\x00")
	default:
		copy(raw, "PK\x03\x04")
	}
	start := b.Len()
	writeBase64(b, raw)
	n := int64(b.Len() - start)
	g.st.attBytes += n
	g.attWrite += n
}

// csvPart writes a text/csv attachment, quoted-printable.
func (g *gen) csvPart(b *bytes.Buffer, name string, size int) {
	g.st.attachments++
	fmt.Fprintf(b, "Content-Type: text/csv; charset=\"utf-8\"; name=\"%s\"\nContent-Transfer-Encoding: quoted-printable\nContent-Disposition: attachment; filename=\"%s\"\n\n", name, name)
	var sb strings.Builder
	sb.WriteString("id,date,customer,amount,status,note\n")
	for sb.Len() < size {
		fmt.Fprintf(&sb, "%d,%s,%s %s,%d.%02d,%s,%s\n", g.r.IntN(1000000), g.now.Add(-time.Duration(g.r.IntN(10000))*time.Hour).Format("2006-01-02"),
			g.pick(firstNames), g.pick(lastNames), g.r.IntN(10000), g.r.IntN(100), g.pick([]string{"open", "paid", "void", "überfällig"}), g.pick(latinWords))
	}
	start := b.Len()
	qw := quotedprintable.NewWriter(b)
	qw.Write([]byte(sb.String()))
	qw.Close()
	b.WriteByte('\n')
	n := int64(b.Len() - start)
	g.st.attBytes += n
	g.attWrite += n
}

// encodeWord returns s as is when ASCII, else as RFC 2047 encoded words in
// the thread's charset (B or Q).
func (g *gen) encodeWord(t *thread, s string) string {
	if isASCII([]byte(s)) {
		return s
	}
	cs := t.charset
	enc := charsetEncoding(cs)
	if enc == nil || cs == "us-ascii" {
		cs = "utf-8"
	}
	raw := []byte(s)
	if enc != nil {
		if e, err := enc.NewEncoder().Bytes(raw); err == nil {
			raw = e
		} else {
			cs, raw = "utf-8", []byte(s)
		}
	}
	if g.r.IntN(2) == 0 || cs == "iso-2022-jp" {
		return "=?" + cs + "?B?" + base64.StdEncoding.EncodeToString(raw) + "?="
	}
	return qWord(cs, raw)
}

// qWord is raw as one Q-encoded word in charset cs.
func qWord(cs string, raw []byte) string {
	var sb strings.Builder
	sb.WriteString("=?" + cs + "?Q?")
	for _, c := range raw {
		switch {
		case c == ' ':
			sb.WriteByte('_')
		case c >= 0x80 || c < 0x20 || strings.IndexByte(qSpecials, c) >= 0:
			fmt.Fprintf(&sb, "=%02X", c)
		default:
			sb.WriteByte(c)
		}
	}
	sb.WriteString("?=")
	return sb.String()
}

// qSpecials are the ASCII bytes a Q-encoded word in a phrase encodes.
const qSpecials = `=?_"(),<>@[]:;\.`

func (g *gen) write(p []byte) {
	g.w.Write(p)
	g.written += int64(len(p))
}

// ---------------------------------------------------------------------------
// the small archive

func writeSmall(w *bufio.Writer, seed uint64, threads, firstTicket int) stats {
	r := rand.New(rand.NewPCG(seed, 0x736d616c6c))
	now := time.Date(2019, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := 0; i < threads; i++ {
		now = now.Add(time.Duration(5+r.IntN(120)) * time.Second)
		from := fmt.Sprintf("%s.%d@example.com", strings.ToLower(firstNames[r.IntN(len(firstNames))]), i)
		fmt.Fprintf(w, "From %s %s\n", from, now.Format("Mon Jan _2 15:04:05 2006"))
		fmt.Fprintf(w, "From: %s %s <%s>\nTo: support@example.com\n", firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))], from)
		fmt.Fprintf(w, "Subject: [#%d] %s %s %s\n", firstTicket+i, latinWords[r.IntN(len(latinWords))], latinWords[r.IntN(len(latinWords))], latinWords[r.IntN(len(latinWords))])
		fmt.Fprintf(w, "Date: %s\nMessage-ID: <small.%d.%d@example.com>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n", now.Format(time.RFC1123Z), seed, i)
		col := 0
		for j, n := 0, 20+r.IntN(60); j < n; j++ {
			wd := latinWords[r.IntN(len(latinWords))]
			if col+len(wd) > 70 {
				w.WriteByte('\n')
				col = 0
			} else if col > 0 {
				w.WriteByte(' ')
			}
			w.WriteString(wd)
			col += len(wd) + 1
		}
		w.WriteString(".\n\n")
	}
	return stats{messages: threads, threads: threads}
}

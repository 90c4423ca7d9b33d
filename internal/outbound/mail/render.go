package mail

import (
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"net/url"
	"slices"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/gatehouse-auth/gatehouse"
)

// ErrUnknownTemplate is returned for a template name Render does not know.
var ErrUnknownTemplate = errors.New("mail: unknown template")

// templateNames lists every template, for Enqueue's early check.
var templateNames = []string{
	gatehouse.MailTemplateVerifyEmail, gatehouse.MailTemplateResetPassword, gatehouse.MailTemplateWelcome, gatehouse.MailTemplateSecurityAlert, gatehouse.MailTemplateMagicLink,
	gatehouse.MailTemplateWebhookDisabled, gatehouse.MailTemplateNewDevice, gatehouse.MailTemplateChangeEmail,
}

// required lists, per template, the data keys that must be non-empty.
var required = map[string][]string{
	gatehouse.MailTemplateVerifyEmail:     {gatehouse.MailKeyLink},
	gatehouse.MailTemplateResetPassword:   {gatehouse.MailKeyLink},
	gatehouse.MailTemplateMagicLink:       {gatehouse.MailKeyLink},
	gatehouse.MailTemplateChangeEmail:     {gatehouse.MailKeyLink},
	gatehouse.MailTemplateSecurityAlert:   {gatehouse.MailKeyTitle},
	gatehouse.MailTemplateWebhookDisabled: {gatehouse.MailKeyTitle},
	gatehouse.MailTemplateNewDevice:       {gatehouse.MailKeyTitle},
}

// Templates returns the names Render accepts, sorted.
func Templates() []string {
	names := slices.Clone(templateNames)
	slices.Sort(names)
	return names
}

//go:embed templates/*.tmpl
var templateFS embed.FS

type page struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

// Renderer turns a template name and its data into a Message (without To).
// Subjects and text bodies use text/template; HTML bodies use
// html/template, so values such as a user's name are escaped there.
// A Renderer is safe for concurrent use.
type Renderer struct {
	serviceName string
	pages       map[string]page
}

// NewRenderer parses the embedded templates. serviceName is shown in every
// email unless the data's gatehouse.MailKeyServiceName overrides it.
func NewRenderer(serviceName string) (*Renderer, error) {
	funcs := map[string]any{
		// button passes a link and its label to the shared "button" block.
		"button": func(link any, label string) map[string]any {
			return map[string]any{"Link": link, "Label": label}
		},
	}
	r := &Renderer{serviceName: serviceName, pages: make(map[string]page, len(templateNames))}
	for _, name := range templateNames {
		subject, err := texttemplate.New(name+".subject.tmpl").Option("missingkey=error").
			ParseFS(templateFS, "templates/"+name+".subject.tmpl")
		if err != nil {
			return nil, fmt.Errorf("mail: parse %s subject: %w", name, err)
		}
		text, err := texttemplate.New("layout.txt.tmpl").Option("missingkey=error").Funcs(funcs).
			ParseFS(templateFS, "templates/layout.txt.tmpl", "templates/"+name+".txt.tmpl")
		if err != nil {
			return nil, fmt.Errorf("mail: parse %s text: %w", name, err)
		}
		html, err := htmltemplate.New("layout.html.tmpl").Option("missingkey=error").Funcs(funcs).
			ParseFS(templateFS, "templates/layout.html.tmpl", "templates/"+name+".html.tmpl")
		if err != nil {
			return nil, fmt.Errorf("mail: parse %s html: %w", name, err)
		}
		r.pages[name] = page{subject: subject, text: text, html: html}
	}
	return r, nil
}

// Render executes the named template with data (see the Key constants) and
// returns the subject and both bodies; To is left empty. It fails with
// ErrUnknownTemplate for an unknown name, and with an error naming the key
// when a required value is missing or a link is not an absolute http(s)
// URL. Errors never quote data values (links carry tokens).
func (r *Renderer) Render(name string, data map[string]any) (Message, error) {
	p, ok := r.pages[name]
	if !ok {
		return Message{}, fmt.Errorf("%w %q", ErrUnknownTemplate, name)
	}
	d, err := r.prepare(name, data)
	if err != nil {
		return Message{}, err
	}

	var b strings.Builder
	if err := p.subject.Execute(&b, d); err != nil {
		return Message{}, fmt.Errorf("mail: render %s subject: %w", name, err)
	}
	subject := singleLine(b.String())
	d["Subject"] = subject

	b.Reset()
	if err := p.text.ExecuteTemplate(&b, "layout", d); err != nil {
		return Message{}, fmt.Errorf("mail: render %s text: %w", name, err)
	}
	text := b.String()

	b.Reset()
	if err := p.html.ExecuteTemplate(&b, "layout", d); err != nil {
		return Message{}, fmt.Errorf("mail: render %s html: %w", name, err)
	}
	return Message{Subject: subject, Text: text, HTML: b.String()}, nil
}

// prepare copies data over the defaults (so templates can test any known
// key, and a typo in a template is an error rather than "<no value>"),
// normalises lists and times, and checks required values.
func (r *Renderer) prepare(name string, data map[string]any) (map[string]any, error) {
	d := map[string]any{
		gatehouse.MailKeyServiceName: r.serviceName,
		gatehouse.MailKeyName:        "",
		gatehouse.MailKeyLink:        "",
		gatehouse.MailKeyExpiresIn:   "",
		gatehouse.MailKeyTitle:       "",
		gatehouse.MailKeyDetails:     []string(nil),
		gatehouse.MailKeyTime:        "",
		gatehouse.MailKeyIP:          "",
	}
	for k, v := range data {
		if v != nil {
			d[k] = v
		}
	}
	for _, k := range []string{gatehouse.MailKeyServiceName, gatehouse.MailKeyName, gatehouse.MailKeyLink, gatehouse.MailKeyExpiresIn, gatehouse.MailKeyTitle, gatehouse.MailKeyIP} {
		d[k] = singleLine(fmt.Sprint(d[k]))
	}
	d[gatehouse.MailKeyDetails] = lines(d[gatehouse.MailKeyDetails])
	d[gatehouse.MailKeyTime] = formatTime(d[gatehouse.MailKeyTime])

	for _, k := range required[name] {
		if d[k] == "" {
			return nil, fmt.Errorf("mail: template %s needs %s", name, k)
		}
	}
	if link := d[gatehouse.MailKeyLink].(string); link != "" {
		u, err := url.Parse(link)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("mail: template %s: %s is not an absolute http(s) URL", name, gatehouse.MailKeyLink)
		}
	}
	return d, nil
}

// lines turns a detail value into non-empty lines.
func lines(v any) []string {
	var out []string
	add := func(s string) {
		for l := range strings.Lines(s) {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
	}
	switch v := v.(type) {
	case nil:
	case []string:
		for _, s := range v {
			add(s)
		}
	case []any:
		for _, s := range v {
			add(fmt.Sprint(s))
		}
	case string:
		add(v)
	default:
		add(fmt.Sprint(v))
	}
	return out
}

// timeLayout is how alert times are shown, always in UTC.
const timeLayout = "2 Jan 2006 15:04 UTC"

// formatTime shows a time.Time, or a string in RFC 3339 (a time.Time after
// JSON), in UTC; other strings pass through.
func formatTime(v any) string {
	switch t := v.(type) {
	case time.Time:
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(timeLayout)
	case *time.Time:
		if t == nil {
			return ""
		}
		return formatTime(*t)
	case string:
		if parsed, err := time.Parse(time.RFC3339Nano, t); err == nil {
			return parsed.UTC().Format(timeLayout)
		}
		return singleLine(t)
	default:
		return singleLine(fmt.Sprint(t))
	}
}

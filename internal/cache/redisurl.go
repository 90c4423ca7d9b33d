package cache

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ParseRedisURL turns Gatehouse's Redis URL into client options, so one
// setting covers the three deployments go-redis's UniversalClient supports:
//
//	redis://[user:pass@]host:port[/db]             one server
//	rediss://...                                   the same over TLS
//	redis://[user:pass@]h1:6379,h2:6379            a cluster (seed nodes);
//	redis://h1:6379?addr=h2:6379&addr=h3:6379      likewise;
//	redis://h1:6379?cluster=true                   a cluster from one seed
//	redis-sentinel://[user:pass@]s1:26379,s2:26379/mymaster[/db]
//	redis-sentinel://s1:26379?master=mymaster      a Sentinel-managed primary
//	rediss-sentinel://...                          the same over TLS
//
// In the sentinel form the user and password are the primary's (the ones
// data commands need); sentinels that require their own credentials take
// them from sentinel_username and sentinel_password parameters. Other query
// parameters are go-redis's (dial_timeout=3s, pool_size=20, skip_verify=true
// ...); unknown ones are an error, so a typo is not silently ignored. Error
// messages never contain the password.
func ParseRedisURL(rawURL string) (*redis.UniversalOptions, error) {
	p, err := splitRedisURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("cache: redis URL: %w", stripURL(err))
	}
	secrets := []string{p.query.Get("password"), p.query.Get("sentinel_password")}
	if p.user != nil {
		pw, _ := p.user.Password()
		secrets = append(secrets, pw)
	}
	opts, err := p.options()
	if err == nil {
		return opts, nil
	}
	if p.user == nil && strings.Contains(rawURL, "@") {
		// An '@' we could not place is most likely in a password holding
		// '?' or '#'; go-redis's message could echo a piece of it.
		return nil, errors.New("cache: redis URL: invalid URL (percent-encode '?', '#' and '@' in the user and password)")
	}
	return nil, redact(fmt.Errorf("cache: redis URL: %w", stripURL(err)), secrets...)
}

// redisURLParts is a Redis URL split by hand, because the host list of the
// cluster and sentinel forms ("h1:6379,h2:6379") is not a valid URL host.
type redisURLParts struct {
	scheme string
	user   *url.Userinfo
	hosts  []string
	path   string
	query  url.Values
}

func splitRedisURL(rawURL string) (*redisURLParts, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, errors.New("missing scheme: want redis://, rediss://, redis-sentinel:// or rediss-sentinel://")
	}
	p := &redisURLParts{scheme: strings.ToLower(scheme)}
	// The userinfo ends at the last '@' before the query. A path never
	// holds an '@', so a password with an unescaped '/' still parses.
	pre := rest
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		pre = rest[:i]
	}
	if at := strings.LastIndex(pre, "@"); at >= 0 {
		user, err := parseUserinfo(rest[:at])
		if err != nil {
			return nil, err
		}
		p.user = user
		rest = rest[at+1:]
	}
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	if authority != "" {
		for h := range strings.SplitSeq(authority, ",") {
			if h = strings.TrimSpace(h); h == "" {
				return nil, errors.New("empty host in host list")
			}
			p.hosts = append(p.hosts, h)
		}
	}
	if tail, _, _ = strings.Cut(tail, "#"); tail != "" {
		u, err := url.Parse(tail)
		if err != nil {
			return nil, err
		}
		p.path = u.Path
		if p.query, err = url.ParseQuery(u.RawQuery); err != nil {
			return nil, fmt.Errorf("invalid query: %w", err)
		}
	}
	if p.query == nil {
		p.query = url.Values{}
	}
	return p, nil
}

// options dispatches on the scheme and the number of hosts.
// parseUserinfo decodes "user:password" leniently: percent-escapes are
// decoded, other characters taken as they are.
func parseUserinfo(s string) (*url.Userinfo, error) {
	name, pw, hasPw := strings.Cut(s, ":")
	name, err1 := url.PathUnescape(name)
	pw, err2 := url.PathUnescape(pw)
	if err1 != nil || err2 != nil {
		return nil, errors.New("invalid user or password (bad percent-escape)")
	}
	if !hasPw {
		return url.User(name), nil
	}
	return url.UserPassword(name, pw), nil
}

func (p *redisURLParts) options() (*redis.UniversalOptions, error) {
	switch p.scheme {
	case "redis", "rediss":
		cluster := len(p.hosts) > 1 || p.query.Has("addr")
		if p.query.Has("cluster") {
			v, err := strconv.ParseBool(p.query.Get("cluster"))
			if err != nil {
				return nil, errors.New("invalid cluster parameter: want true or false")
			}
			cluster = cluster || v
			p.query.Del("cluster")
		}
		if cluster {
			return parseCluster(p)
		}
		return parseSingle(p)
	case "redis-sentinel", "rediss-sentinel":
		return parseSentinel(p)
	default:
		return nil, fmt.Errorf("unsupported scheme %q: want redis, rediss, redis-sentinel or rediss-sentinel", p.scheme)
	}
}

// build reassembles a URL for go-redis's own parsers from one host.
func (p *redisURLParts) build(scheme string, user *url.Userinfo, path string) string {
	u := url.URL{Scheme: scheme, User: user, Path: path, RawQuery: p.query.Encode()}
	if len(p.hosts) > 0 {
		u.Host = p.hosts[0]
	}
	return u.String()
}

func parseSingle(p *redisURLParts) (*redis.UniversalOptions, error) {
	o, err := redis.ParseURL(p.build(p.scheme, p.user, p.path))
	if err != nil {
		return nil, err
	}
	u := &redis.UniversalOptions{Addrs: []string{o.Addr}}
	copyOptions(u, o)
	return u, nil
}

func parseCluster(p *redisURLParts) (*redis.UniversalOptions, error) {
	if db := strings.Trim(p.path, "/"); db != "" && db != "0" {
		return nil, errors.New("a cluster has only database 0: drop the /db path")
	}
	for _, h := range p.hosts[min(1, len(p.hosts)):] {
		p.query.Add("addr", withPort(h, "6379"))
	}
	o, err := redis.ParseClusterURL(p.build(p.scheme, p.user, ""))
	if err != nil {
		return nil, err
	}
	u := &redis.UniversalOptions{IsClusterMode: true}
	copyOptions(u, o)
	return u, nil
}

func parseSentinel(p *redisURLParts) (*redis.UniversalOptions, error) {
	if len(p.hosts) == 0 {
		return nil, errors.New("no sentinel address")
	}
	for i, h := range p.hosts {
		p.hosts[i] = withPort(h, "26379")
	}
	master := p.query.Get("master")
	if master == "" {
		master = p.query.Get("master_name")
	}
	p.query.Del("master")
	p.query.Del("master_name")

	segs := strings.FieldsFunc(p.path, func(r rune) bool { return r == '/' })
	if len(segs) > 2 {
		return nil, errors.New("invalid path: want /master[/db]")
	}
	if len(segs) > 0 {
		if master != "" && master != segs[0] {
			return nil, errors.New("master name given both in the path and as a parameter")
		}
		master = segs[0]
	}
	if master == "" {
		return nil, errors.New("no sentinel master name: add /mymaster or ?master=mymaster")
	}
	path := ""
	if len(segs) == 2 {
		path = "/" + segs[1]
	}
	p.query.Set("master_name", master)

	// go-redis reads the userinfo as the sentinels' credentials and the
	// username/password parameters as the primary's; ours is the other way
	// round because the primary's are the ones every deployment needs.
	if p.query.Has("username") || p.query.Has("password") {
		return nil, errors.New("put the primary's user and password in the userinfo, not in parameters")
	}
	var sentinelUser *url.Userinfo
	su, sp := p.query.Get("sentinel_username"), p.query.Get("sentinel_password")
	if p.query.Has("sentinel_password") {
		sentinelUser = url.UserPassword(su, sp)
	} else if su != "" {
		sentinelUser = url.User(su)
	}
	p.query.Del("sentinel_username")
	p.query.Del("sentinel_password")
	if p.user != nil {
		if name := p.user.Username(); name != "" {
			p.query.Set("username", name)
		}
		if pw, ok := p.user.Password(); ok {
			p.query.Set("password", pw)
		}
	}
	for _, h := range p.hosts[1:] {
		p.query.Add("addr", h)
	}
	o, err := redis.ParseFailoverURL(p.build(strings.TrimSuffix(p.scheme, "-sentinel"), sentinelUser, path))
	if err != nil {
		return nil, err
	}
	u := &redis.UniversalOptions{Addrs: o.SentinelAddrs, ReadOnly: o.ReplicaOnly}
	copyOptions(u, o)
	return u, nil
}

// withPort adds the default port to a host that has none.
func withPort(host, port string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

// copyOptions copies every field of src (a go-redis Options, ClusterOptions
// or FailoverOptions) that UniversalOptions has under the same name and
// type. Copying by reflection rather than by a hand-written list means a
// URL parameter go-redis adds later is carried over instead of silently
// dropped. Zero fields are skipped so fields set by the caller survive.
func copyOptions(dst *redis.UniversalOptions, src any) {
	dv := reflect.ValueOf(dst).Elem()
	sv := reflect.ValueOf(src).Elem()
	st := sv.Type()
	for i := range st.NumField() {
		f := st.Field(i)
		if !f.IsExported() || sv.Field(i).IsZero() {
			continue
		}
		d := dv.FieldByName(f.Name)
		if d.IsValid() && d.CanSet() && f.Type.AssignableTo(d.Type()) {
			d.Set(sv.Field(i))
		}
	}
}

// stripURL replaces a *url.Error, whose message repeats the whole URL with
// its password, by the bare reason.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return errors.New(ue.Err.Error())
	}
	return err
}

// redactedError keeps the cause for errors.Is while its message has the
// secrets replaced.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact makes sure no secret appears in err's message, in plain or
// percent-encoded form, whatever a dependency chose to print.
func redact(err error, secrets ...string) error {
	msg := err.Error()
	changed := false
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, form := range []string{s, url.QueryEscape(s), url.PathEscape(s)} {
			if strings.Contains(msg, form) {
				msg = strings.ReplaceAll(msg, form, "xxxxx")
				changed = true
			}
		}
	}
	if !changed {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

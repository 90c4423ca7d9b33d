package cache_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/cache"
)

func TestParseRedisURL(t *testing.T) {
	type want struct {
		addrs            []string
		db               int
		user, password   string
		sentinelUser     string
		sentinelPassword string
		master           string
		cluster          bool
		tls              string // expected ServerName; "" means no TLS
	}
	tests := []struct {
		url  string
		want want
		more func(t *testing.T, o *redis.UniversalOptions)
	}{
		{url: "redis://localhost:6379/2", want: want{addrs: []string{"localhost:6379"}, db: 2}},
		{url: "redis://cache.internal", want: want{addrs: []string{"cache.internal:6379"}}},
		{url: "redis://user:p%40ss%3Aword@h:6380/0", want: want{addrs: []string{"h:6380"}, user: "user", password: "p@ss:word"}},
		{url: "redis://:pw@h", want: want{addrs: []string{"h:6379"}, password: "pw"}},
		{url: "redis://u:a/b+c=@h/1", want: want{addrs: []string{"h:6379"}, db: 1, user: "u", password: "a/b+c="}},
		{url: "redis://u@h", want: want{addrs: []string{"h:6379"}, user: "u"}},
		{url: "rediss://h.example:6390/1", want: want{addrs: []string{"h.example:6390"}, db: 1, tls: "h.example"}},
		{url: "redis://[::1]:6379", want: want{addrs: []string{"[::1]:6379"}}},
		{url: "redis://h?dial_timeout=3s&pool_size=7&read_timeout=2", want: want{addrs: []string{"h:6379"}},
			more: func(t *testing.T, o *redis.UniversalOptions) {
				require.Equal(t, 3*time.Second, o.DialTimeout)
				require.Equal(t, 2*time.Second, o.ReadTimeout)
				require.Equal(t, 7, o.PoolSize)
			}},
		{url: "redis://h?db=4", want: want{addrs: []string{"h:6379"}, db: 4}},
		{url: "rediss://h?skip_verify=true", want: want{addrs: []string{"h:6379"}, tls: "h"},
			more: func(t *testing.T, o *redis.UniversalOptions) {
				require.True(t, o.TLSConfig.InsecureSkipVerify)
			}},

		// Cluster: several hosts, addr parameters, or cluster=true.
		{url: "redis://h1:6379,h2:6380", want: want{addrs: []string{"h1:6379", "h2:6380"}, cluster: true}},
		{url: "redis://h1:6379, h2 ,h3:7000/0", want: want{addrs: []string{"h1:6379", "h2:6379", "h3:7000"}, cluster: true}},
		{url: "redis://u:pw@h1:6379?addr=h2:6379&addr=h3:6379", want: want{
			addrs: []string{"h1:6379", "h2:6379", "h3:6379"}, user: "u", password: "pw", cluster: true}},
		{url: "rediss://:pw@h1,h2?read_only=true", want: want{addrs: []string{"h1:6379", "h2:6379"}, password: "pw", cluster: true, tls: "h1"},
			more: func(t *testing.T, o *redis.UniversalOptions) {
				require.True(t, o.ReadOnly)
			}},
		{url: "redis://config.example:7000?cluster=true", want: want{addrs: []string{"config.example:7000"}, cluster: true}},
		{url: "redis://h:6379?cluster=false", want: want{addrs: []string{"h:6379"}}},

		// Sentinel: hosts are sentinels, the path or master= names the primary.
		{url: "redis-sentinel://:pw@s1:26379,s2/mymaster/3", want: want{
			addrs: []string{"s1:26379", "s2:26379"}, master: "mymaster", db: 3, password: "pw"}},
		{url: "redis-sentinel://s1?master=mymaster", want: want{addrs: []string{"s1:26379"}, master: "mymaster"}},
		{url: "redis-sentinel://app:pw@s1:5000/m?sentinel_username=sen&sentinel_password=spw&addr=s2:5001", want: want{
			addrs: []string{"s1:5000", "s2:5001"}, master: "m", user: "app", password: "pw",
			sentinelUser: "sen", sentinelPassword: "spw"}},
		{url: "redis-sentinel://s1/m?sentinel_password=spw&db=2", want: want{
			addrs: []string{"s1:26379"}, master: "m", db: 2, sentinelPassword: "spw"}},
		{url: "redis-sentinel://s1/m?sentinel_username=sen", want: want{
			addrs: []string{"s1:26379"}, master: "m", sentinelUser: "sen"}},
		{url: "redis-sentinel://s1/m?master_name=m", want: want{addrs: []string{"s1:26379"}, master: "m"}},
		{url: "rediss-sentinel://s1.example/m", want: want{addrs: []string{"s1.example:26379"}, master: "m", tls: "s1.example"}},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			o, err := cache.ParseRedisURL(tc.url)
			require.NoError(t, err)
			w := tc.want
			require.Equal(t, w.addrs, o.Addrs)
			require.Equal(t, w.db, o.DB)
			require.Equal(t, w.user, o.Username)
			require.Equal(t, w.password, o.Password)
			require.Equal(t, w.sentinelUser, o.SentinelUsername)
			require.Equal(t, w.sentinelPassword, o.SentinelPassword)
			require.Equal(t, w.master, o.MasterName)
			require.Equal(t, w.cluster, o.IsClusterMode)
			if w.tls == "" {
				require.Nil(t, o.TLSConfig)
			} else {
				require.NotNil(t, o.TLSConfig)
				require.Equal(t, w.tls, o.TLSConfig.ServerName)
			}
			if tc.more != nil {
				tc.more(t, o)
			}

			// The options select the intended client. Clients connect
			// lazily, so no server is needed.
			client := redis.NewUniversalClient(o)
			defer client.Close()
			switch {
			case w.cluster:
				require.IsType(t, &redis.ClusterClient{}, client)
			default:
				require.IsType(t, &redis.Client{}, client)
			}
		})
	}
}

func TestParseRedisURLErrors(t *testing.T) {
	const secret = "hunter2-Secret"
	tests := []struct{ url, contains string }{
		{"localhost:6379", "missing scheme"},
		{"http://localhost", "unsupported scheme"},
		{"unix:///tmp/redis.sock", "unsupported scheme"},
		{"redis://h1,h2/3", "database 0"},
		{"redis://h1,,h2", "empty host"},
		{"redis://h?cluster=maybe", "cluster"},
		{"redis://h?bogus=1", "bogus"},
		{"redis://h/notanumber", "database"},
		{"redis://h/1/2", "path"},
		{"redis://h?db=x", "database"},
		{"redis://h?%zz", "query"},
		{"redis://h1,h2?addr=nonsense", "addr"},
		{"redis-sentinel://s1", "master"},
		{"redis-sentinel:///m", "sentinel address"},
		{"redis-sentinel://s1/m?master=other", "master"},
		{"redis-sentinel://s1/m/0/x", "path"},
		{"redis-sentinel://s1/m?password=x", "userinfo"},
		{"redis-sentinel://s1/m/x", "database"},
		{"redis://us%zzer:" + secret + "@h", "user or password"},
		{"redis://u:a?" + secret + "@h", "percent-encode"},
		{"redis://u:a#" + secret + "@h", "percent-encode"},
		// Failures after the password was read must not echo it.
		{"redis://u:" + secret + "@h/abc", "database"},
		{"redis://u:" + secret + "@h?dial_timeout=abc", "dial_timeout"},
		{"redis://u:" + secret + "@h1:6379,h2:6379?pool_size=x", "pool_size"},
		{"redis://u:" + secret + "@h:notaport", ""},
		{"redis-sentinel://u:" + secret + "@s1/m?read_timeout=x", "read_timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			_, err := cache.ParseRedisURL(tc.url)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.contains)
			require.Contains(t, err.Error(), "cache: redis URL")
			require.NotContains(t, err.Error(), secret)
			t.Log(err)
		})
	}
}

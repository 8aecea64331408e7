package main

import "testing"

func TestRolloutDetail(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"rollout_id":"ro_1","version_number":2,"action":"activate"}`, "ro_1 to v2"},
		{`{"rollout_id":"ro_1","healthy":1,"wanted":3}`, "ro_1 1/3 healthy"},
		{`{"rollout_id":"ro_1","healthy":0,"wanted":2,"reason":"0 of 2 instances healthy by the deadline"}`,
			"ro_1 0/2 healthy: 0 of 2 instances healthy by the deadline"},
		{`not json`, ""},
	} {
		if got := rolloutDetail([]byte(tc.in)); got != tc.want {
			t.Errorf("rolloutDetail(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

package server

import (
	"strings"
	"testing"
)

func TestParseBlobs(t *testing.T) {
	for spec, want := range map[string]string{
		"":                                       "primary=",
		"file:///srv/blobs":                      "primary=file:///srv/blobs",
		"s3://b?endpoint=http://127.0.0.1:9000":  "primary=s3://b?endpoint=http://127.0.0.1:9000",
		"us=s3://a?endpoint=http://h:1&region=x": "us=s3://a?endpoint=http://h:1&region=x",
		"us=s3://a?endpoint=x, eu-2=file:///d":   "us=s3://a?endpoint=x eu-2=file:///d",
		"us=s3://a?x=1%2C2,eu=s3://b,ap=s3://c":  "us=s3://a?x=1%2C2 eu=s3://b ap=s3://c",
		"us=s3://a,us=s3://b":                    "error: given twice",
		"us=s3://a,EU=s3://b":                    "error: DNS label",
		"us=s3://a,eu=":                          "error: s3:// or file://",
		"us=s3://a,eu=http://b":                  "error: s3:// or file://",
		"us=s3://a,s3://b":                       "error: NAME=URL",
		"s3://a?endpoint=http://h,s3://b?x=y":    "error: a region name each",
	} {
		var got string
		rs, err := parseBlobs(spec)
		if err != nil {
			got = "error: " + err.Error()
		}
		var parts []string
		for _, r := range rs {
			parts = append(parts, r.Name+"="+r.URL)
		}
		got += strings.Join(parts, " ")
		if strings.HasPrefix(want, "error: ") && !strings.Contains(got, strings.TrimPrefix(want, "error: ")) ||
			!strings.HasPrefix(want, "error: ") && got != want {
			t.Errorf("parseBlobs(%q) = %q, want %q", spec, got, want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "--blobs: ") {
			t.Errorf("parseBlobs(%q): %v does not name the flag", spec, err)
		}
	}
}

func TestValidateRegion(t *testing.T) {
	for _, tc := range []struct{ blobs, region, err string }{
		{"", "", ""},
		{"", "primary", ""},
		{"", "eu", `--region: "eu" is not a region of --blobs (primary)`},
		{"us=s3://a,eu=s3://b", "eu", ""},
		{"us=s3://a,eu=s3://b", "ap", `--region: "ap" is not a region of --blobs (us, eu)`},
	} {
		c := Default()
		c.Blobs, c.Region = tc.blobs, tc.region
		err := c.Validate()
		if (err == nil && tc.err != "") || (err != nil && err.Error() != tc.err) {
			t.Errorf("blobs %q region %q: %v, want %q", tc.blobs, tc.region, err, tc.err)
		}
	}
	c := Default()
	c.ReplicaRetry = -1
	if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), "--replica-retry") {
		t.Errorf("negative --replica-retry: %v", err)
	}
}

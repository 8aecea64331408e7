package registry_test

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// conformanceTool runs the OCI distribution-spec conformance suite.
const conformanceTool = "/work/shared/tools/oci-conformance"

// TestConformanceSuite runs the distribution-spec conformance suite against
// the registry with every data set and API it offers enabled, and fails on
// any FAIL. It is skipped when the tool is missing, except under CI=true.
func TestConformanceSuite(t *testing.T) { testConformanceSuite(t, newEnv) }

func testConformanceSuite(t *testing.T, newEnv newEnvFunc) {
	tool := conformanceTool
	if v := os.Getenv("OCI_CONFORMANCE_TOOL"); v != "" {
		tool = v
	}
	if _, err := os.Stat(tool); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("conformance tool: %v", err)
		}
		t.Skipf("conformance tool: %v", err)
	}
	if testing.Short() {
		t.Skip("-short")
	}
	everything := []string{
		"OCI_API_PULL=true", "OCI_API_PUSH=true", "OCI_API_REFERRER=true",
		"OCI_API_BLOBS_DELETE=true", "OCI_API_BLOBS_MOUNT_ANONYMOUS=true", "OCI_API_BLOBS_UPLOAD_CANCEL=true",
		"OCI_API_BLOBS_DIGEST_HEADER=true", "OCI_API_MANIFESTS_DIGEST_HEADER=true",
		"OCI_API_MANIFESTS_DELETE=true", "OCI_API_MANIFESTS_TAG_PARAM=true",
		"OCI_API_TAGS_LIST=true", "OCI_API_TAGS_DELETE=true", "OCI_DATA_SHA512=true",
	}
	for name, env := range map[string][]string{"defaults": nil, "everything": everything} {
		t.Run(name, func(t *testing.T) { runConformance(t, newEnv, tool, env) })
	}
}

// runConformance runs the suite against a fresh registry with extra
// environment settings.
func runConformance(t *testing.T, newEnv newEnvFunc, tool string, extra []string) {
	e := newEnv(t, nil)
	// The suite pushes to nested repositories (conformance/repo1, …): their deployment
	// must exist, as a push creates only the deployment it pushes to.
	e.createOCI(t, "conformance")
	results := t.TempDir()
	cmd := exec.CommandContext(t.Context(), tool, strings.TrimPrefix(e.srv.URL, "http://"), results)
	cmd.Env = append(os.Environ(), "OCI_USERNAME=cairn", "OCI_PASSWORD="+testToken, "OCI_VERSION=1.1")
	cmd.Env = append(cmd.Env, extra...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("conformance suite:\n%s", out.String())
	if err != nil {
		t.Errorf("conformance suite failed (%v); full log in %s/out.txt", err, results)
		if b, rerr := os.ReadFile(results + "/out.txt"); rerr == nil {
			t.Logf("%s", failures(b))
		}
	}
}

// failures keeps the lines of the suite's log that report failed tests.
func failures(log []byte) string {
	var keep []string
	for _, l := range strings.Split(string(log), "\n") {
		if strings.Contains(l, "failed test") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/extensions/acl"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// TestReloadTokensAndRules changes the token file and the config file's
// ACL under a running command and reloads them (SIGHUP): new handshakes
// meet the new tokens and rules, a session made before keeps its identity,
// and a broken file leaves the rules as they were.
func TestReloadTokensAndRules(t *testing.T) {
	tokens := writeFile(t, "tokens", "t1 ana\n")
	cfg := writeFile(t, "bayou.json", `{"acl": {"rules": [{"pattern": "/news/**", "subscribe": "anyone", "publish": "none"}]}}`)
	c := startCommand(t, "--addr", "127.0.0.1:0", "--log-level", "info", "--timeout", "1", "--config", cfg,
		"--auth", "token", "--token-file", tokens, "--require-handshake", "--protect", "/private/**")
	url := c.url(t, "Bayeux")
	ana := post(t, url, handshakeBody(`,"ext":{"token":"t1"}`))["clientId"].(string)
	if r := post(t, url, `{"channel":"/news/a","clientId":"`+ana+`","data":1}`); r["error"] != acl.ErrForbidden {
		t.Fatalf("publish on /news before the reload: %v", r)
	}

	if err := os.WriteFile(tokens, []byte("t2 bob\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(`{"acl": {"rules": [{"pattern": "/news/**", "subscribe": "anyone", "publish": "identified"}]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c.hup <- syscall.SIGHUP
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return strings.Contains(c.stderr.String(), "msg=reloaded") }, "the reload logged")
	if r := post(t, url, handshakeBody(`,"ext":{"token":"t1"}`)); r["successful"] != false {
		t.Fatalf("handshake with the removed token: %v", r)
	}
	bob := post(t, url, handshakeBody(`,"ext":{"token":"t2"}`))
	if bob["successful"] != true {
		t.Fatalf("handshake with the new token: %v", bob)
	}
	// The session made before the reload keeps its identity, and meets
	// the new rules.
	if r := post(t, url, subscribeBody(ana, "/private/x")); r["successful"] != true {
		t.Fatalf("subscribe of the earlier session: %v", r)
	}
	if r := post(t, url, `{"channel":"/news/a","clientId":"`+ana+`","data":1}`); r["successful"] != true {
		t.Fatalf("publish on /news after the reload: %v", r)
	}

	// A broken ACL is refused: the rules stay.
	if err := os.WriteFile(cfg, []byte(`{"acl": {"rules": [{"pattern": "/news/**", "publish": "everyone"}]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c.hup <- syscall.SIGHUP
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return strings.Contains(c.stderr.String(), "reload failed") }, "the failed reload logged")
	if r := post(t, url, `{"channel":"/news/a","clientId":"`+ana+`","data":2}`); r["successful"] != true {
		t.Fatalf("publish after a failed reload: %v", r)
	}
}

// buildBinary builds the command into a temporary directory and returns
// its path. The build stamps the VCS revision, as go build does.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "bayou")
	cmd := exec.Command("go", "build", "-buildvcs=auto", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestVersion checks bayou version and --version, in process and in a
// built binary (which carries its VCS revision).
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"--version", "--timeout", "0"}, {"version", "--addr", "127.0.0.1:0"}} {
		out := &bayeuxtest.Buffer{}
		if err := run(context.Background(), args, noEnv, out, &bayeuxtest.Buffer{}, nil); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if !strings.HasPrefix(out.String(), "bayou ") || !strings.Contains(out.String(), " go1.") {
			t.Errorf("%q printed %q", args, out.String())
		}
	}
	bin := buildBinary(t)
	// The go command stamps the revision of a git checkout, but not of a
	// linked work tree (git worktree: .git is a file there).
	want := "revision unknown"
	if top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output(); err == nil {
		if fi, err := os.Stat(filepath.Join(strings.TrimSpace(string(top)), ".git")); err == nil && fi.IsDir() {
			head, err := exec.Command("git", "rev-parse", "HEAD").Output()
			if err != nil {
				t.Fatal(err)
			}
			want = "revision " + strings.TrimSpace(string(head))
		}
	}
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.Command(bin, arg).Output()
		if err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		if !strings.HasPrefix(string(out), "bayou ") || !strings.Contains(string(out), want) {
			t.Errorf("bayou %s printed %q, want %q", arg, out, want)
		}
	}
}

// TestSIGHUPReloadsARealProcess runs the built binary with a token file,
// connects a WebSocket client, replaces the token file and sends SIGHUP:
// the new token works at once, the connected client stays connected and
// served, and SIGTERM then drains the process, which exits 0.
func TestSIGHUPReloadsARealProcess(t *testing.T) {
	bin := buildBinary(t)
	tokens := writeFile(t, "tokens", "old-token ana\n")
	cmd := exec.Command(bin, "--addr", "127.0.0.1:0", "--timeout", "2", "--auth", "token", "--token-file", tokens,
		"--require-handshake", "--log-level", "info")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &bayeuxtest.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := regexp.MustCompile(`serving Bayeux at (\S+)`).FindStringSubmatch(sc.Text()); m != nil {
				lines <- m[1]
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var url string
	select {
	case url = <-lines:
	case <-time.After(10 * time.Second):
		t.Fatalf("no URL printed; stderr:\n%s", stderr.String())
	}

	ws := bayeuxtest.DialWebSocket(t, url, nil)
	exchange := func(msg string) gjson.Result {
		t.Helper()
		if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("the connected client: %v", err)
		}
		return gjson.ParseBytes(b)
	}
	id := exchange(`[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"],"ext":{"token":"old-token"}}]`).Get("0.clientId").String()
	if r := exchange(`[{"channel":"/meta/connect","clientId":"` + id + `","connectionType":"websocket","advice":{"timeout":0}},` +
		`{"channel":"/meta/subscribe","clientId":"` + id + `","subscription":"/room"}]`); !r.Get("1.successful").Bool() {
		t.Fatalf("connect and subscribe: %s", r.Raw)
	}
	if r := post(t, url, handshakeBody(`,"ext":{"token":"new-token"}`)); r["successful"] != false {
		t.Fatalf("the new token before the reload: %v", r)
	}

	if err := os.WriteFile(tokens, []byte("new-token bob\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	bayeuxtest.Eventually(t, 5*time.Second, func() bool {
		return post(t, url, handshakeBody(`,"ext":{"token":"new-token"}`))["successful"] == true
	}, "the new token accepted after SIGHUP")
	// The client connected before the reload is still connected: a
	// publish by another client reaches it on its WebSocket.
	bob := post(t, url, handshakeBody(`,"ext":{"token":"new-token"}`))["clientId"].(string)
	if r := post(t, url, `{"channel":"/room","clientId":"`+bob+`","data":"after the reload"}`); r["successful"] != true {
		t.Fatalf("publish: %v", r)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for got := ""; !strings.Contains(got, "after the reload"); {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("the connected client, waiting for the message (got %s): %v", got, err)
		}
		got += string(b)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the process did not exit after SIGTERM")
	}
	if !strings.Contains(stderr.String(), "msg=reloaded") {
		t.Errorf("no reload logged:\n%s", stderr.String())
	}
}

// TestServerExtensionsKeepDeliveryFilters checks that the chain installed
// in the server filters deliveries when one of its extensions does
// (jwtauth, the ACL) or when a reload may bring ACL rules, and not
// otherwise.
func TestServerExtensionsKeepDeliveryFilters(t *testing.T) {
	cfg := writeFile(t, "bayou.json", `{}`)
	for _, tt := range []struct {
		args    []string
		filters bool
	}{
		{[]string{"--auth", "jwt", "--jwt-secret", "s"}, true},
		{[]string{"--config", cfg}, true},
		{[]string{"--auth", "token", "--token-secret", "s"}, false},
	} {
		o, err := parseOptions(tt.args, noEnv, &bayeuxtest.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		exts, chain, err := serverExtensions(o, nil)
		if err != nil || len(exts) != 1 || chain == nil {
			t.Fatalf("%q: %v %v %v", tt.args, exts, chain, err)
		}
		if _, ok := exts[0].(bayeux.DeliveryFilter); ok != tt.filters {
			t.Errorf("%q: the chain filters deliveries: %v, want %v", tt.args, ok, tt.filters)
		}
	}
}

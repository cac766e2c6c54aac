package loopauth

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestCheckOpenableURL covers rows O-03, O-04 and O-05.
func TestCheckOpenableURL(t *testing.T) {
	ok := []string{
		"https://as.example.com/authorize?client_id=a&state=b&scope=a+b",
		"http://127.0.0.1:8080/authorize",
		"http://[::1]:8080/authorize",
	}
	for _, u := range ok {
		if err := checkOpenableURL(u); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	bad := map[string]string{
		"O-03 leading dash":        "-a Calculator",
		"O-03 option":              "--help",
		"O-04 file":                "file:///C:/Windows/System32/calc.exe",
		"O-04 javascript":          "javascript:alert(1)",
		"O-04 smb":                 "smb://host/share",
		"O-04 ms-msdt":             "ms-msdt:/id PCWDiagnostic",
		"O-04 vscode":              "vscode://file/etc/passwd",
		"O-04 http non-loopback":   "http://evil.example/",
		"O-04 http localhost name": "http://localhost.evil.example/",
		"O-04 userinfo":            "https://user:pass@as.example/",
		"O-05 space":               "https://as.example/a b",
		"O-05 newline":             "https://as.example/\n$(id)",
		"O-05 non-ASCII":           "https://as.example/é",
		"O-05 backtick":            "https://as.example/`id`",
		"O-05 quote":               `https://as.example/"&calc`,
		"O-09 over 8 KiB":          "https://as.example/?x=" + strings.Repeat("a", maxAuthURLBytes),
		"relative":                 "/authorize",
	}
	for name, u := range bad {
		if err := checkOpenableURL(u); !errors.Is(err, ErrUnsafeURL) {
			t.Errorf("%s: %q accepted (err %v)", name, u, err)
		}
	}
}

// TestBrowserCommand covers O-01 and O-02: the launcher is never a shell,
// and the URL is one argument.
func TestBrowserCommand(t *testing.T) {
	u := "https://as.example/authorize?a=1&b=2|x^y<z>%PATH%!"
	cases := map[string][]string{
		"windows": {"rundll32", "url.dll,FileProtocolHandler", u},
		"darwin":  {"open", u},
		"linux":   {"xdg-open", u},
		"freebsd": {"xdg-open", u},
	}
	for goos, want := range cases {
		name, args := browserCommand(goos, u)
		got := append([]string{name}, args...)
		if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Errorf("%s: %q, want %q", goos, got, want)
		}
		for _, shell := range []string{"cmd", "sh", "bash", "powershell", "start"} {
			if name == shell {
				t.Errorf("%s launches through %s", goos, shell)
			}
		}
	}
}

// TestOpenSystemBrowser runs the real default opener against a fake
// xdg-open on PATH: the URL arrives intact as one argument (O-02, O-08),
// the launcher's output does not reach our stdout, and a failing launcher
// is an error (O-06).
func TestOpenSystemBrowser(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the fake launcher is a POSIX shell script named xdg-open; this test runs on Linux")
	}
	dir := t.TempDir()
	argsFile := filepath.Join(dir, "args")
	script := "#!/bin/sh\necho launcher-chatter\necho launcher-error >&2\nprintf '%s\\n' \"$#\" \"$@\" > " + argsFile + "\nexit ${FAKE_EXIT:-0}\n"
	if err := os.WriteFile(filepath.Join(dir, "xdg-open"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	// O-07: $BROWSER is a shell template on some systems; it is ignored.
	marker := filepath.Join(dir, "browser-env-used")
	t.Setenv("BROWSER", "sh -c 'touch "+marker+"' %s")
	u := "https://as.example/authorize?response_type=code&client_id=a&state=" + strings.Repeat("s", 43) + "&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fcallback&x=$(id)"
	if err := openSystemBrowser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	// The launcher's chatter must not reach the program's own output: run
	// the opener in a child process and read its stdout and stderr.
	child := exec.Command(os.Args[0], "-test.run=^TestOpenerChild$")
	child.Env = append(os.Environ(), "LOOPAUTH_OPENER_CHILD_URL="+u)
	out, err := child.CombinedOutput()
	if err != nil || strings.Contains(string(out), "launcher-") {
		t.Errorf("child: %v, output %q", err, out)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("$BROWSER was run")
	}
	got, _ := os.ReadFile(argsFile)
	if string(got) != "1\n"+u+"\n" {
		t.Errorf("launcher got %q, want exactly one argument %q", got, u)
	}
	t.Setenv("FAKE_EXIT", "3")
	if err := openSystemBrowser(context.Background(), u); err == nil {
		t.Error("failing launcher reported success")
	}
	t.Setenv("PATH", t.TempDir())
	if err := openSystemBrowser(context.Background(), u); err == nil {
		t.Error("missing launcher reported success")
	}
	if err := openSystemBrowser(context.Background(), "file:///etc/passwd"); !errors.Is(err, ErrUnsafeURL) {
		t.Errorf("unsafe URL: %v", err)
	}
}

// TestPrintAuthURL covers L-05: what is printed to the terminal has no
// control characters.
func TestPrintAuthURL(t *testing.T) {
	var buf bytes.Buffer
	printAuthURL(&buf, "https://as.example/a?x=1", errors.New("exec: \x1b[31mxdg-open\x07 not found"))
	out := buf.String()
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Errorf("control characters printed: %q", out)
	}
	if !strings.Contains(out, "https://as.example/a?x=1") || !strings.Contains(out, "Open this URL") {
		t.Errorf("output = %q", out)
	}
}

// TestOpenerChild is the child process of TestOpenSystemBrowser.
func TestOpenerChild(t *testing.T) {
	u := os.Getenv("LOOPAUTH_OPENER_CHILD_URL")
	if u == "" {
		t.Skip("runs only as the child process of TestOpenSystemBrowser")
	}
	if err := openSystemBrowser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
}

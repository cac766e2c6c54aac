package loopauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
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
		"O-05 dollar":              "https://as.example/$(calc)",
		"O-05 PowerShell variable": "https://as.example/?x=$env:USERPROFILE",
		"O-09 over 8 KiB":          "https://as.example/?x=" + strings.Repeat("a", maxAuthURLBytes),
		"relative":                 "/authorize",
	}
	for name, u := range bad {
		if err := checkOpenableURL(u); !errors.Is(err, ErrUnsafeURL) {
			t.Errorf("%s: %q accepted (err %v)", name, u, err)
		}
	}
}

// TestBrowserCommand covers O-01 and O-02: the launcher is never a
// shell, and the URL is one argument; under WSL the Windows browser comes
// first, without cmd.exe.
func TestBrowserCommand(t *testing.T) {
	u := "https://as.example/authorize?a=1&b=2|x^y<z>%PATH%!"
	cases := []struct {
		goos string
		wsl  bool
		want [][]string
	}{
		{"windows", false, [][]string{{"rundll32", "url.dll,FileProtocolHandler", u}}},
		{"darwin", false, [][]string{{"open", u}}},
		{"linux", false, [][]string{{"xdg-open", u}}},
		{"freebsd", false, [][]string{{"xdg-open", u}}},
		{"linux", true, [][]string{
			{"rundll32.exe", "url.dll,FileProtocolHandler", u},
			{"/mnt/c/Windows/System32/rundll32.exe", "url.dll,FileProtocolHandler", u},
			{"xdg-open", u},
		}},
	}
	for _, c := range cases {
		got := platformLaunchers(c.goos, c.wsl, u)
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", c.want) {
			t.Errorf("%s wsl=%v: %q, want %q", c.goos, c.wsl, got, c.want)
		}
		for _, argv := range got {
			switch strings.TrimSuffix(argv[0], ".exe") {
			case "cmd", "sh", "bash", "powershell", "pwsh", "start", "explorer", "wslview":
				t.Errorf("%s launches through %s", c.goos, argv[0])
			}
		}
	}
}

// TestOpenSystemBrowser runs the real default opener against a fake
// xdg-open on PATH: the URL arrives intact as one argument (O-02, O-08),
// the launcher's output does not reach our stdout, and a failing launcher
// is an error (O-06).
func TestOpenSystemBrowser(t *testing.T) {
	if runtime.GOOS != "linux" || hostEnvironment().wsl {
		t.Skip("the fake launcher is a POSIX shell script named xdg-open; this test runs on Linux, not WSL (the real Windows browser would open)")
	}
	dir := t.TempDir()
	argsFile := filepath.Join(dir, "args")
	script := "#!/bin/sh\necho launcher-chatter\necho launcher-error >&2\nprintf '%s\\n' \"$#\" \"$@\" > " + argsFile + "\nexit ${FAKE_EXIT:-0}\n"
	if err := os.WriteFile(filepath.Join(dir, "xdg-open"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	t.Setenv("BROWSER", "") // $BROWSER has its own tests
	u := "https://as.example/authorize?response_type=code&client_id=a&state=" + strings.Repeat("s", 43) + "&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fcallback&x=;id&y=(z)"
	if err := systemBrowserOpener(nil)(context.Background(), u); err != nil {
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
	got, _ := os.ReadFile(argsFile)
	if string(got) != "1\n"+u+"\n" {
		t.Errorf("launcher got %q, want exactly one argument %q", got, u)
	}
	t.Setenv("FAKE_EXIT", "3")
	if err := systemBrowserOpener(nil)(context.Background(), u); err == nil {
		t.Error("failing launcher reported success")
	}
	t.Setenv("PATH", t.TempDir())
	if err := systemBrowserOpener(nil)(context.Background(), u); err == nil {
		t.Error("missing launcher reported success")
	}
	if err := systemBrowserOpener(nil)(context.Background(), "file:///etc/passwd"); !errors.Is(err, ErrUnsafeURL) {
		t.Errorf("unsafe URL: %v", err)
	}
}

// TestOpenerChild is the child process of TestOpenSystemBrowser.
func TestOpenerChild(t *testing.T) {
	u := os.Getenv("LOOPAUTH_OPENER_CHILD_URL")
	if u == "" {
		t.Skip("runs only as the child process of TestOpenSystemBrowser")
	}
	if err := systemBrowserOpener(nil)(context.Background(), u); err != nil {
		t.Fatal(err)
	}
}

// TestWhereAmI covers each signal of the headless detection and their
// combinations (issue 11, "Where am I").
func TestWhereAmI(t *testing.T) {
	type machine struct {
		goos    string
		env     map[string]string
		files   []string
		release string
	}
	cases := []struct {
		name     string
		m        machine
		headless bool
		wsl      bool
		reason   string // a word the reason must contain
	}{
		{"linux desktop X11", machine{goos: "linux", env: map[string]string{"DISPLAY": ":0"}}, false, false, "desktop"},
		{"linux desktop Wayland", machine{goos: "linux", env: map[string]string{"WAYLAND_DISPLAY": "wayland-0"}}, false, false, "desktop"},
		{"linux no display", machine{goos: "linux"}, true, false, "no display"},
		{"linux empty DISPLAY", machine{goos: "linux", env: map[string]string{"DISPLAY": ""}}, true, false, "no display"},
		{"freebsd no display", machine{goos: "freebsd"}, true, false, "no display"},
		{"openbsd desktop", machine{goos: "openbsd", env: map[string]string{"DISPLAY": ":0"}}, false, false, "desktop"},
		{"macOS without DISPLAY", machine{goos: "darwin"}, false, false, "desktop"},
		{"windows without DISPLAY", machine{goos: "windows"}, false, false, "desktop"},
		{"android without DISPLAY", machine{goos: "android"}, false, false, "desktop"},
		{"SSH_CONNECTION", machine{goos: "linux", env: map[string]string{"SSH_CONNECTION": "10.0.0.2 50000 10.0.0.1 22"}}, true, false, "SSH_CONNECTION"},
		{"SSH_CLIENT", machine{goos: "linux", env: map[string]string{"SSH_CLIENT": "10.0.0.2 50000 22"}}, true, false, "SSH_CLIENT"},
		{"SSH_TTY", machine{goos: "linux", env: map[string]string{"SSH_TTY": "/dev/pts/3"}}, true, false, "SSH_TTY"},
		{"SSH with forwarded DISPLAY", machine{goos: "linux", env: map[string]string{"SSH_CONNECTION": "x", "DISPLAY": "localhost:10.0"}}, true, false, "SSH"},
		{"SSH to a Mac", machine{goos: "darwin", env: map[string]string{"SSH_TTY": "/dev/ttys001"}}, true, false, "SSH"},
		{"SSH to Windows", machine{goos: "windows", env: map[string]string{"SSH_CLIENT": "x"}}, true, false, "SSH"},
		{"docker", machine{goos: "linux", files: []string{"/.dockerenv"}}, true, false, "container"},
		{"podman", machine{goos: "linux", files: []string{"/run/.containerenv"}}, true, false, "container"},
		{"toolbox with a display", machine{goos: "linux", env: map[string]string{"WAYLAND_DISPLAY": "wayland-0"}, files: []string{"/run/.containerenv"}}, false, false, "desktop"},
		{"SSH into a container", machine{goos: "linux", env: map[string]string{"SSH_TTY": "x"}, files: []string{"/.dockerenv"}}, true, false, "SSH"},
		{"WSL by name", machine{goos: "linux", env: map[string]string{"WSL_DISTRO_NAME": "Ubuntu"}}, false, true, "WSL"},
		{"WSL by interop", machine{goos: "linux", env: map[string]string{"WSL_INTEROP": "/run/WSL/1_interop"}}, false, true, "WSL"},
		{"WSL2 kernel (after sudo)", machine{goos: "linux", release: "5.15.153.1-microsoft-standard-WSL2\n"}, false, true, "WSL"},
		{"WSL1 kernel", machine{goos: "linux", release: "4.4.0-19041-Microsoft\n"}, false, true, "WSL"},
		{"WSLg display", machine{goos: "linux", env: map[string]string{"WSL_DISTRO_NAME": "Ubuntu", "DISPLAY": ":0"}}, false, true, "WSL"},
		{"plain kernel", machine{goos: "linux", release: "6.1.0-18-amd64\n", env: map[string]string{"DISPLAY": ":0"}}, false, false, "desktop"},
		{"SSH into WSL", machine{goos: "linux", env: map[string]string{"WSL_DISTRO_NAME": "Ubuntu", "SSH_CONNECTION": "x"}}, true, true, "SSH"},
		{"Docker Desktop container on the WSL kernel", machine{goos: "linux", release: "5.15.153.1-microsoft-standard-WSL2", files: []string{"/.dockerenv"}}, true, false, "container"},
		{"WSL variables on another OS", machine{goos: "windows", env: map[string]string{"WSL_DISTRO_NAME": "Ubuntu"}}, false, false, "desktop"},
		{"container files on macOS", machine{goos: "darwin", files: []string{"/.dockerenv"}}, false, false, "desktop"},
		{"$BROWSER over SSH (VS Code Remote)", machine{goos: "linux", env: map[string]string{"SSH_CONNECTION": "x", "BROWSER": "/home/u/.vscode-server/bin/x/helpers/browser.sh"}}, false, false, "$BROWSER"},
		{"$BROWSER in a dev container", machine{goos: "linux", env: map[string]string{"BROWSER": "/vscode/helpers/browser.sh"}, files: []string{"/.dockerenv"}}, false, false, "$BROWSER"},
		{"$BROWSER with no display", machine{goos: "linux", env: map[string]string{"BROWSER": "firefox"}}, false, false, "$BROWSER"},
		{"text browser over SSH", machine{goos: "linux", env: map[string]string{"SSH_TTY": "x", "BROWSER": "w3m:/usr/bin/lynx -accept_all_cookies"}}, true, false, "SSH"},
		{"text browser then a graphical one", machine{goos: "linux", env: map[string]string{"SSH_TTY": "x", "BROWSER": "w3m:firefox"}}, false, false, "$BROWSER"},
		{"unusable $BROWSER", machine{goos: "linux", env: map[string]string{"BROWSER": "  :'unclosed"}}, true, false, "no display"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			getenv := func(k string) string { return c.m.env[k] }
			exists := func(name string) bool { return slices.Contains(c.m.files, name) }
			readFile := func(name string) ([]byte, error) {
				if name != "/proc/sys/kernel/osrelease" || c.m.release == "" {
					return nil, os.ErrNotExist
				}
				return []byte(c.m.release), nil
			}
			got := whereAmI(c.m.goos, getenv, exists, readFile)
			if got.headless != c.headless || got.wsl != c.wsl || !strings.Contains(got.reason, c.reason) {
				t.Errorf("got %+v, want headless=%v wsl=%v reason containing %q", got, c.headless, c.wsl, c.reason)
			}
		})
	}
	// The process's own environment: whatever it is, it has a reason.
	if env := hostEnvironment(); env.reason == "" {
		t.Errorf("hostEnvironment: %+v", env)
	}
}

// TestSplitShellWords covers the word splitting of $BROWSER entries (O-07):
// quotes and escapes as in sh, nothing expanded.
func TestSplitShellWords(t *testing.T) {
	ok := []struct {
		in   string
		want []string
	}{
		{"firefox", []string{"firefox"}},
		{"  firefox\t--new-tab  %s ", []string{"firefox", "--new-tab", "%s"}},
		{`'/Applications/My Browser.app/x' %s`, []string{"/Applications/My Browser.app/x", "%s"}},
		{`"/opt/my browser/bin" -a`, []string{"/opt/my browser/bin", "-a"}},
		{`/opt/my\ browser`, []string{"/opt/my browser"}},
		{`a\'b "c\"d" "e\f" 'g\h'`, []string{"a'b", `c"d`, `e\f`, `g\h`}},
		{`"a\\b" "\$HOME" "\` + "`" + `x"`, []string{`a\b`, "$HOME", "`x"}},
		{"one\\\ntwo", []string{"onetwo"}},
		{`pre"mid dle"'post '`, []string{"premid dlepost "}},
		{`$HOME/bin/b ~/b *.sh $(id) ` + "`id`" + ` a;b a|b a&b`, []string{"$HOME/bin/b", "~/b", "*.sh", "$(id)", "`id`", "a;b", "a|b", "a&b"}},
		{`C:\Windows\x`, []string{`C:Windowsx`}},
		{`"C:\Program Files\x.exe"`, []string{`C:\Program Files\x.exe`}},
	}
	for _, c := range ok {
		got, err := splitShellWords(c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%q: %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	bad := []string{"", "   ", "\t\n", `'unclosed`, `"unclosed`, `a "b\"`, `trailing\`, `firefox ''`, `"" %s`, `firefox "" %s`}
	for _, in := range bad {
		if got, err := splitShellWords(in); err == nil {
			t.Errorf("%q accepted as %q", in, got)
		}
	}
}

// TestPlaceURL covers where the URL goes in a $BROWSER command (O-07):
// always one whole argument, never spliced into other text.
func TestPlaceURL(t *testing.T) {
	const u = "https://as.example/a$(id);b?x=1&y=2"
	ok := []struct {
		in, want []string
	}{
		{[]string{"firefox"}, []string{"firefox", u}},
		{[]string{"firefox", "--new-tab"}, []string{"firefox", "--new-tab", u}},
		{[]string{"firefox", "%s", "--new-tab"}, []string{"firefox", u, "--new-tab"}},
		{[]string{"chromium", "--app=%s"}, []string{"chromium", "--app=" + u}},
		{[]string{"b", "-u=%s"}, []string{"b", "-u=" + u}},
		{[]string{"b", "%s", "%s"}, []string{"b", u, u}},
		{[]string{"b", "100%%"}, []string{"b", "100%", u}},
		{[]string{"b", "%%s"}, []string{"b", "%s", u}},
		{[]string{"b", "50%", "%d"}, []string{"b", "50%", "%d", u}},
		{[]string{"sh", "-c", `firefox "$1"`, "sh", "%s"}, []string{"sh", "-c", `firefox "$1"`, "sh", u}},
	}
	for _, c := range ok {
		got, err := placeURL(c.in, u)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%q: %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	bad := [][]string{
		{"%s"},
		{"/bin/%s", "x"},
		{"sh", "-c", "firefox %s"},
		{"b", "url:%s"},
		{"b", "--app=%s/x"},
		{"b", "--a=%s%s"},
		{"b", "x=%s"},
		{"b", "%s%%"},
	}
	for _, in := range bad {
		if got, err := placeURL(in, u); err == nil {
			t.Errorf("%q accepted as %q", in, got)
		}
	}
}

// TestBrowserVarCommands covers the $BROWSER list (O-07): entries in order,
// invalid ones skipped with a reason and never with the URL, ';' as the
// separator on Windows.
func TestBrowserVarCommands(t *testing.T) {
	const u = "https://as.example/a?state=SECRETSTATE"
	var skipped []string
	skip := func(entry int, why string) { skipped = append(skipped, fmt.Sprintf("%d: %s", entry, why)) }
	got := browserVarCommands("linux", "missing-browser %s:   :'unclosed:firefox --new-tab::b --url=%s:sh -c 'open %s':lynx", u, skip)
	want := [][]string{{"missing-browser", u}, {"firefox", "--new-tab", u}, {"b", "--url=" + u}, {"lynx", u}}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Errorf("commands %q, want %q", got, want)
	}
	if len(skipped) != 4 || !strings.HasPrefix(skipped[0], "2: ") || !strings.HasPrefix(skipped[1], "3: ") ||
		!strings.HasPrefix(skipped[2], "5: ") || !strings.HasPrefix(skipped[3], "7: ") {
		t.Errorf("skipped %q", skipped)
	}
	if strings.Contains(strings.Join(skipped, "\n"), "SECRETSTATE") {
		t.Errorf("a skip reason carries the URL: %q", skipped)
	}
	if got := browserVarCommands("linux", "", u, skip); got != nil {
		t.Errorf("empty $BROWSER: %q", got)
	}
	win := browserVarCommands("windows", `"C:\Program Files\Mozilla Firefox\firefox.exe" -new-tab;edge`, u, skip)
	want = [][]string{{`C:\Program Files\Mozilla Firefox\firefox.exe`, "-new-tab", u}, {"edge", u}}
	if fmt.Sprintf("%q", win) != fmt.Sprintf("%q", want) {
		t.Errorf("windows: %q, want %q", win, want)
	}
}

// TestOpenBrowserVar runs the default opener with $BROWSER against fake
// browsers (POSIX shell scripts recording their argv) covering O-07: the
// entries are tried in order, the first that starts wins, the URL arrives
// as exactly one argument, no shell ever runs, the URL checks come first,
// and skipped entries are logged at Debug without the URL.
func TestOpenBrowserVar(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the fake browsers are POSIX shell scripts; this test runs on Linux")
	}
	dir := t.TempDir()
	for _, name := range []string{"fake-browser", "xdg-open", "launcher.bat"} {
		script := "#!/bin/sh\necho chatter\necho chatter >&2\nprintf '%s\\n' \"$#\" \"$@\" > " + filepath.Join(dir, name+".args") + "\nexit ${FAKE_EXIT:-0}\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// ran returns the argv a fake recorded ("" if it did not run) and
	// forgets it.
	ran := func(name string) string {
		p := filepath.Join(dir, name+".args")
		b, _ := os.ReadFile(p)
		os.Remove(p)
		return string(b)
	}
	t.Setenv("PATH", dir+":/usr/bin:/bin")
	t.Setenv("FAKE_EXIT", "")
	state := strings.Repeat("S", 43)
	u := "https://as.example/a;b(c)&d?response_type=code&client_id=a&state=" + state + "&x=%3B%60%24"
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// The real opener, but never WSL's: on a WSL machine that would open
	// the real Windows browser.
	open := func(ctx context.Context, u string) error {
		return openBrowser(ctx, u, "linux", os.Getenv("BROWSER"), false, logger)
	}

	t.Run("first that starts wins", func(t *testing.T) {
		t.Setenv("BROWSER", "missing-browser %s:   :fake-browser 'two words' --url=%s:xdg-open")
		if err := open(context.Background(), u); err != nil {
			t.Fatal(err)
		}
		if got, want := ran("fake-browser"), "2\ntwo words\n--url="+u+"\n"; got != want {
			t.Errorf("fake-browser got %q, want %q", got, want)
		}
		if got := ran("xdg-open"); got != "" {
			t.Errorf("another launcher ran after the first: %q", got)
		}
		if !strings.Contains(logs.String(), "skipping an entry of $BROWSER") || !strings.Contains(logs.String(), "missing-browser") {
			t.Errorf("skipped entries not logged: %s", logs.String())
		}
		if strings.Contains(logs.String(), state) {
			t.Errorf("the log carries the state: %s", logs.String())
		}
	})
	t.Run("URL appended as one argument", func(t *testing.T) {
		t.Setenv("BROWSER", "fake-browser")
		if err := open(context.Background(), u); err != nil {
			t.Fatal(err)
		}
		if got := ran("fake-browser"); got != "1\n"+u+"\n" {
			t.Errorf("fake-browser got %q", got)
		}
	})
	t.Run("a started launcher that fails is the result", func(t *testing.T) {
		t.Setenv("BROWSER", "fake-browser:xdg-open")
		t.Setenv("FAKE_EXIT", "3")
		if err := open(context.Background(), u); err == nil || strings.Contains(err.Error(), state) {
			t.Errorf("failing launcher: %v", err)
		}
		ran("fake-browser")
		if got := ran("xdg-open"); got != "" {
			t.Errorf("xdg-open ran after a started $BROWSER entry: %q", got)
		}
	})
	t.Run("nothing usable falls back to the platform launcher", func(t *testing.T) {
		t.Setenv("BROWSER", "missing-browser:'unclosed:sh -c 'fake-browser %s'")
		if err := open(context.Background(), u); err != nil {
			t.Fatal(err)
		}
		if got := ran("xdg-open"); got != "1\n"+u+"\n" {
			t.Errorf("platform launcher got %q", got)
		}
		if got := ran("fake-browser"); got != "" {
			t.Errorf("the sh -c entry ran: %q", got)
		}
	})
	t.Run("unsafe URL reaches no $BROWSER", func(t *testing.T) {
		t.Setenv("BROWSER", "fake-browser")
		if err := open(context.Background(), "file:///etc/passwd"); !errors.Is(err, ErrUnsafeURL) {
			t.Errorf("unsafe URL: %v", err)
		}
		if got := ran("fake-browser"); got != "" {
			t.Errorf("fake-browser ran: %q", got)
		}
	})
	t.Run("never through a shell", func(t *testing.T) {
		var markers []string
		for i := range 5 {
			markers = append(markers, filepath.Join(dir, fmt.Sprint("marker", i)))
		}
		for _, v := range []string{
			"echo hi; touch " + markers[0],
			"true $(touch " + markers[1] + ") `touch " + markers[2] + "` && touch " + markers[3] + " | touch " + markers[4],
		} {
			t.Setenv("BROWSER", v)
			if err := open(context.Background(), u); err != nil {
				t.Fatal(err)
			}
		}
		for _, m := range markers {
			if _, err := os.Stat(m); err == nil {
				t.Errorf("%s was created: $BROWSER went through a shell", m)
			}
		}
	})
	t.Run("hostile URL is one argument", func(t *testing.T) {
		// checkOpenableURL refuses these characters before any launcher
		// runs; the launching itself must not depend on it.
		hostile := `https://as.example/a b"c'd;e$(id)` + "`id`\n|f&g\\h"
		cmds := browserVarCommands("linux", "fake-browser --x %s", hostile, func(int, string) {})
		if err := runLaunchers(context.Background(), "linux", cmds, nil); err != nil {
			t.Fatal(err)
		}
		if got := ran("fake-browser"); got != "2\n--x\n"+hostile+"\n" {
			t.Errorf("fake-browser got %q", got)
		}
	})
	t.Run("batch files refused on Windows", func(t *testing.T) {
		err := runLaunchers(context.Background(), "windows", [][]string{{"launcher.bat", u}}, nil)
		if err == nil || !strings.Contains(err.Error(), "cmd.exe") {
			t.Errorf("batch file: %v", err)
		}
		if got := ran("launcher.bat"); got != "" {
			t.Errorf("batch file ran: %q", got)
		}
		if !isBatchFile(`C:\x\Y.CMD`) || !isBatchFile("a.bat") || isBatchFile("firefox.exe") {
			t.Error("isBatchFile")
		}
	})
	t.Run("output stays out of the program's", func(t *testing.T) {
		if hostEnvironment().wsl {
			t.Skip("on WSL the child would open the real Windows browser")
		}
		t.Setenv("BROWSER", "fake-browser")
		child := exec.Command(os.Args[0], "-test.run=^TestOpenerChild$")
		child.Env = append(os.Environ(), "LOOPAUTH_OPENER_CHILD_URL="+u)
		out, err := child.CombinedOutput()
		if err != nil || strings.Contains(string(out), "chatter") {
			t.Errorf("child: %v, output %q", err, out)
		}
		if got := ran("fake-browser"); got != "1\n"+u+"\n" {
			t.Errorf("fake-browser got %q", got)
		}
	})
}

// TestDefaultOpenerLogsToClientLogger: the opener Build installs reports
// the $BROWSER entries it skips to the client's logger, never the URL.
func TestDefaultOpenerLogsToClientLogger(t *testing.T) {
	if runtime.GOOS != "linux" || hostEnvironment().wsl {
		t.Skip("needs Linux outside WSL: the fallback launcher is a fake xdg-open")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "xdg-open"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	t.Setenv("BROWSER", "'unbalanced")
	var logs bytes.Buffer
	c, err := NewBuilder().ClientID("c").AuthURL("https://as.example/authorize").TokenURL("https://as.example/token").
		Logger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))).Build()
	if err != nil {
		t.Fatal(err)
	}
	u := "https://as.example/authorize?state=" + strings.Repeat("s", 43)
	if err := c.opener(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "skipping an entry of $BROWSER") || strings.Contains(logs.String(), strings.Repeat("s", 43)) {
		t.Errorf("client log: %s", logs.String())
	}
}

package fleet

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// RSS is the process's resident set size (VmRSS of /proc/self/status), 0
// when unknown.
func RSS() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fs := strings.Fields(v)
			if len(fs) > 0 {
				kb, _ := strconv.ParseUint(fs[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

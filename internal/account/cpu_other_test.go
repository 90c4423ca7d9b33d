//go:build !unix

package account_test

import "time"

// processCPU is not measured here: the CPU metrics of the benchmarks read 0.
func processCPU() time.Duration { return 0 }

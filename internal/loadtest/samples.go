package loadtest

// maxSamples bounds the per-request samples a run keeps for its plots
// (12 bytes each): a long run at a high rate keeps an evenly thinned
// subset rather than growing without end. The table's numbers come from
// vegeta.Metrics over every request, never from these.
const maxSamples = 1 << 21

// sample is one request, as the plots need it.
type sample struct {
	at       float32 // seconds since the run started
	ms       float32 // latency in milliseconds
	scenario uint8   // index in Scenarios, plus one
	failed   bool
}

// samples keeps every stride-th sample; when full it drops every other
// one kept and doubles the stride, so what is kept stays evenly spread
// over the whole run.
type samples struct {
	list   []sample
	limit  int
	stride int
	skip   int
}

func (s *samples) add(x sample) {
	if s.stride == 0 {
		s.stride = 1
	}
	if s.skip++; s.skip < s.stride {
		return
	}
	s.skip = 0
	if len(s.list) >= s.limit {
		kept := s.list[:0]
		for i := 0; i < len(s.list); i += 2 {
			kept = append(kept, s.list[i])
		}
		s.list = kept
		s.stride *= 2
	}
	s.list = append(s.list, x)
}

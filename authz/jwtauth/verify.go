package jwtauth

// maxKeyTries bounds the signature checks one token without a kid can cause
// against a key set, so that a large JWKS cannot be turned into a CPU cost.
const maxKeyTries = 8

// selectProfile finds the profiles the token's claims select and returns the
// first whose keys verify the signature, with the key set epoch it verified
// under. Several profiles can match when profiles select by different claims;
// they are tried in claim name order.
func (v *Verifier) selectProfile(x *index, p *parsed) (*profile, uint64, error) {
	var firstErr error
	for _, claim := range x.claims {
		val, present, err := stringClaim(p.claims, claim)
		if err != nil || !present {
			continue
		}
		prof := x.byClaim[claim][val]
		if prof == nil {
			continue
		}
		epoch, err := v.checkSignature(prof, p)
		if err == nil {
			return prof, epoch, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		return nil, 0, refuse(UnknownProfile, "the token's claims select no JWT profile")
	}
	return nil, 0, firstErr
}

// checkSignature verifies p with prof's keys. The alg must be one the
// profile allows before any key is used: the profile's key kind, not the
// token, decides the algorithm family.
func (v *Verifier) checkSignature(prof *profile, p *parsed) (uint64, error) {
	if !prof.algs.has(p.alg) {
		return 0, refuse(Algorithm, "alg "+p.alg.String()+" is not allowed for the profile")
	}
	vf := v.verifiers[p.alg]
	input := []byte(p.signingInput)
	switch {
	case prof.hmac != nil:
		if vf.Verify(prof.hmac, input, p.sig) != nil {
			return 0, refuse(Signature, "signature does not verify")
		}
		return 0, nil
	case prof.src != nil:
		set := prof.src.set.Load()
		if set == nil {
			return 0, refuse(KeyUnavailable, "the profile's key set has not been fetched yet")
		}
		byKid := p.kid != "" && set.hasKids
		kidFound, tried := false, 0
		for _, k := range set.keys {
			if byKid && k.kid != p.kid {
				continue
			}
			kidFound = true
			if !k.algs.has(p.alg) {
				continue
			}
			if tried++; tried > maxKeyTries {
				break
			}
			if vf.Verify(k.key, input, p.sig) == nil {
				return set.epoch, nil
			}
		}
		if byKid && !kidFound {
			// The issuer may have rotated keys: fetch again in the
			// background, within the rate bound; this token is refused.
			prof.src.requestRefresh()
			return 0, refuse(UnknownKey, "kid names no key of the profile's key set")
		}
		if tried == 0 {
			return 0, refuse(Algorithm, "no key of the profile takes alg "+p.alg.String())
		}
		return 0, refuse(Signature, "signature does not verify")
	default:
		tried := 0
		for _, k := range prof.keys {
			if !k.algs.has(p.alg) {
				continue
			}
			tried++
			if vf.Verify(k.key, input, p.sig) == nil {
				return 0, nil
			}
		}
		if tried == 0 {
			return 0, refuse(Algorithm, "no key of the profile takes alg "+p.alg.String())
		}
		return 0, refuse(Signature, "signature does not verify")
	}
}

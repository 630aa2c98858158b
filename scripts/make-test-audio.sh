#!/usr/bin/env bash
# Regenerates the speech fixtures in tests/fixtures/audio/ with espeak-ng + sox.
# Run it ONCE by hand (scripts/make-test-audio.sh) and commit the WAVs: the
# tests only read them (through tests/common/audio.rs) and need neither
# espeak-ng nor sox at run time. Output depends on the espeak-ng/sox versions
# (made with espeak-ng 1.51 and SoX 14.4.2, Debian 12).
#
# Files (all 8000 Hz mono):
#   agent.wav, client.wav            s16 PCM, LEAD s of silence, the phrase,
#                                    silence up to TOTAL s. These are the
#                                    references for audio::speech_score and
#                                    the sources for baresip's aufile.
#   agent-ulaw.wav, client-ulaw.wav  the same as μ-law (8 bit) for SIPp's
#                                    <exec rtp_stream="FILE,-1,0"/> (loops).
#
# baresip's aufile hangs up the call when its file ends: tests give baresip a
# longer copy made at run time by audio::write_padded (phrase once, then
# silence) or audio::write_repeated (phrase looped), e.g. 40 s.
set -euo pipefail

LEAD=${LEAD:-0.25}     # silence before the phrase, seconds
TOTAL=${TOTAL:-7}      # total length of each fixture, seconds

AGENT_TEXT="Hello, this is the callback desk of the securities company, calling about your new account."
CLIENT_TEXT="Yes, I opened the account myself and I understand the risks."
# Different voices and speeds so the two energy envelopes differ clearly.
AGENT_VOICE="en-us";    AGENT_SPEED=170
CLIENT_VOICE="en-gb+f3"; CLIENT_SPEED=145

root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/tests/fixtures/audio"
mkdir -p "$out"
# shellcheck source=lib/speech.sh
. "$root/scripts/lib/speech.sh"
speech_tools
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

make_one() { # name voice speed text
  local name=$1 voice=$2 speed=$3 text=$4
  local secs
  secs=$(speech_synth "$tmp" "$name" "$voice" "$speed" "$text")
  if awk -v s="$secs" -v l="$LEAD" -v t="$TOTAL" 'BEGIN { exit !(s < 3 || s > 6 || s + l + 0.5 > t) }'; then
    echo "$name: speech is $secs s: want 3-6 s and LEAD + speech + 0.5 <= TOTAL ($TOTAL)" >&2
    exit 1
  fi
  # pad in samples so the total is exact
  local n lead tail
  n=$(soxi -s "$tmp/$name-speech.wav")
  lead=$(awk -v l="$LEAD" 'BEGIN { printf "%d", l * 8000 }')
  tail=$(awk -v t="$TOTAL" -v l="$lead" -v n="$n" 'BEGIN { printf "%d", t * 8000 - l - n }')
  sox -D "$tmp/$name-speech.wav" -b 16 -e signed-integer "$out/$name.wav" pad "${lead}s" "${tail}s"
  sox -D "$out/$name.wav" -r 8000 -c 1 -e u-law -b 8 "$out/$name-ulaw.wav"
  echo "$name: speech $secs s, total $(soxi -D "$out/$name.wav") s"
  sox "$out/$name.wav" -n stats 2>&1 | grep -E 'Pk lev dB|RMS lev dB|Flat factor|Pk count'
}

make_one agent  "$AGENT_VOICE"  "$AGENT_SPEED"  "$AGENT_TEXT"
make_one client "$CLIENT_VOICE" "$CLIENT_SPEED" "$CLIENT_TEXT"
printf '%s\n' "$AGENT_TEXT" > "$out/agent.txt"
printf '%s\n' "$CLIENT_TEXT" > "$out/client.txt"
du -ch "$out"/*.wav | tail -1

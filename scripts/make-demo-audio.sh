#!/usr/bin/env bash
# Regenerates the speech of `huifang demo` in config/demo/audio/ with
# espeak-ng (Mandarin voice `cmn`) and sox. Run it ONCE by hand and commit
# the WAVs: `huifang demo` embeds them and needs neither tool at run time.
# Output depends on the espeak-ng/sox versions (made with espeak-ng 1.51 and
# SoX 14.4.2, Debian 12).
#
# Files (8000 Hz mono s16 PCM, LEAD s of silence, the phrase, TAIL s of
# silence; each a few seconds, together well under 1 MB):
#   agent.wav    the agent's greeting and question
#   client.wav   the client's answer
#   *.txt        the text spoken
set -euo pipefail

LEAD=${LEAD:-0.2}      # silence before the phrase, seconds
TAIL=${TAIL:-0.2}      # silence after it, seconds

AGENT_TEXT="您好，回访中心，是您本人开户吗？"
CLIENT_TEXT="是的，是我本人开的。"
# Different voices and speeds so that the two energy envelopes differ clearly
# (the demo tells the agent's channel from the client's by them).
AGENT_VOICE="cmn";    AGENT_SPEED=260
CLIENT_VOICE="cmn+f3"; CLIENT_SPEED=200

root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/config/demo/audio"
mkdir -p "$out"
# shellcheck source=lib/speech.sh
. "$root/scripts/lib/speech.sh"
speech_tools
espeak-ng --voices=cmn | grep -q ' cmn ' || { echo "espeak-ng has no Mandarin voice (cmn)" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

make_one() { # name voice speed text
  local name=$1 voice=$2 speed=$3 text=$4
  local secs
  secs=$(speech_synth "$tmp" "$name" "$voice" "$speed" "$text")
  if awk -v s="$secs" 'BEGIN { exit !(s < 1.5 || s > 4) }'; then
    echo "$name: speech is $secs s: want 1.5-4 s (short calls keep the demo quick)" >&2
    exit 1
  fi
  sox -D "$tmp/$name-speech.wav" -b 16 -e signed-integer "$out/$name.wav" pad "$LEAD" "$TAIL"
  printf '%s\n' "$text" > "$out/$name.txt"
  echo "$name: speech $secs s, file $(soxi -D "$out/$name.wav") s"
}

make_one agent  "$AGENT_VOICE"  "$AGENT_SPEED"  "$AGENT_TEXT"
make_one client "$CLIENT_VOICE" "$CLIENT_SPEED" "$CLIENT_TEXT"
du -ch "$out"/*.wav | tail -1

# Shared by scripts/make-test-audio.sh and scripts/make-demo-audio.sh (source
# it, do not run it): speech from espeak-ng, made into 8 kHz mono s16 with sox.

# Fails unless espeak-ng, sox and soxi are installed.
speech_tools() {
  local tool
  for tool in espeak-ng sox soxi; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install espeak-ng sox" >&2; exit 1; }
  done
}

# speech_synth DIR NAME VOICE SPEED TEXT: writes DIR/NAME-speech.wav, the
# phrase alone — 8 kHz mono s16, leading and trailing silence trimmed, peak
# normalised to -3 dBFS (-D: no dither, so silence stays digital zero and the
# output is repeatable) — and prints its length in seconds.
speech_synth() {
  local dir=$1 name=$2 voice=$3 speed=$4 text=$5
  espeak-ng -v "$voice" -s "$speed" -w "$dir/$name-raw.wav" "$text"
  sox -D "$dir/$name-raw.wav" -r 8000 -c 1 -b 16 -e signed-integer "$dir/$name-speech.wav" \
    silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse norm -3
  soxi -D "$dir/$name-speech.wav"
}

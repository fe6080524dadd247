#!/bin/sh
# Bad input: every case must exit with code 3 and print exactly one line that
# names the file and the problem; failing conversions leave nothing under the
# output name (and keep an existing file intact).
# usage: test_bad_input.sh TOOL SCRATCH_DIR SOURCE_DIR
set -u
T=$1; D=$2; S=$3
rm -rf "$D"; mkdir -p "$D"; cd "$D" || exit 1
fail=0

# expect3 NAME PATTERN CMD...: exit code 3, one stderr line matching PATTERN
expect3() {
  name=$1; pat=$2; shift 2
  "$@" >out.txt 2>err.txt; rc=$?
  lines=$(wc -l <err.txt)
  if [ "$rc" != 3 ] || [ "$lines" != 1 ] || ! grep -q -- "$pat" err.txt; then
    echo "FAIL $name: rc=$rc lines=$lines, want 3, 1 line matching '$pat'; stderr:"; cat err.txt; fail=1
  else
    echo "ok   $name: $(cat err.txt)"
  fi
}

# --- HDF5 files (info validates at open, load also checks values) ---
expect3 missing-file "nope.h5: cannot open: No such file" "$T" info nope.h5
printf 'hello, not hdf5\n' >text.h5
expect3 not-hdf5 "text.h5: not an HDF5 file" "$T" info text.h5
"$T" mkbad good-ctr good.h5 || fail=1
size=$(wc -c <good.h5)
head -c $((size / 2)) good.h5 >trunc.h5
expect3 truncated "trunc.h5: truncated" "$T" load trunc.h5
for k in schema:"unknown schema 'cddp.foo.v1'" noschema:"missing root attribute 'schema'" \
         missing:"missing dataset 'dense'" dtype:"dataset 'sparse' has type int64, expected int32" \
         shape:"dataset 'dense' has shape \[200,12\], expected \[N,13\]" rowcount:"dataset 'dense' has 200 rows but 'label' has 199" \
         empty:"dataset 'label' is empty" notables:"missing attribute 'table_sizes'"; do
  kind=${k%%:*}; pat=${k#*:}
  "$T" mkbad "$kind" "$kind.h5" || fail=1
  expect3 "$kind" "$kind.h5: $pat" "$T" info "$kind.h5"
done
# found by fuzzing (tests/fuzz): a damaged header declares 'dense' compact with
# 0 bytes of storage (HDF5 itself copied from a null pointer)
expect3 compact-size0 "corrupt file: compact dataset 'dense' holds 0 bytes, its shape needs 312" \
  "$T" load "$S/../fuzz/regressions/dataset-compact-size0.h5" --batch 2
# (and a chunk larger than the image: HDF5 copied a chunk out of a smaller buffer)
expect3 chunk-exceeds-shape "corrupt file: dataset 'images' has chunks of 249 along axis 1, which is 4 long" \
  "$T" load "$S/../fuzz/regressions/dataset-chunk-exceeds-shape.h5" --batch 2
# values, found by the loader thread
for k in label:"row 5, column label: label 2 is not 0 or 1" nan:"row 7, column dense\[3\]: value nan is not finite" \
         id:"row 9, column sparse\[4\]: id 54 outside \[0, 54)" negid:"row 11, column sparse\[20\]: id -5" \
         hist:"row 13, column user_hist\[2\]: item -2" userid:"row 17, column user_id: id 10" \
         imglabel:"row 21, column labels: label 5 outside \[0, 5)"; do
  kind=${k%%:*}; pat=${k#*:}
  "$T" mkbad "$kind" "$kind.h5" || fail=1
  expect3 "value-$kind" "$kind.h5: $pat" "$T" load "$kind.h5" --shuffle full
done

# --- Criteo TSV ---
SAMPLE=$S/criteo-sample-1999.tsv
head -n 20 "$SAMPLE" >base.tsv
mkbadtsv() { # NAME LINE: base.tsv with LINE inserted as line 8
  head -n 7 base.tsv >"$1"; printf '%s\n' "$2" >>"$1"; tail -n +8 base.tsv >>"$1"
}
mkbadtsv fields.tsv "$(printf '1\t2\t3')"
mkbadtsv int.tsv "$(head -n 1 base.tsv | awk -F'\t' 'BEGIN{OFS="\t"}{$4="12x"; print}')"
mkbadtsv hex.tsv "$(head -n 1 base.tsv | awk -F'\t' 'BEGIN{OFS="\t"}{$20="zz12"; print}')"
mkbadtsv longhex.tsv "$(head -n 1 base.tsv | awk -F'\t' 'BEGIN{OFS="\t"}{$20="123456789"; print}')"
mkbadtsv label.tsv "$(head -n 1 base.tsv | awk -F'\t' 'BEGIN{OFS="\t"}{$1="2"; print}')"
expect3 tsv-fields "fields.tsv: line 8: wrong field count (3, expected 40)" "$T" convert criteo fields.tsv o.h5
expect3 tsv-int "int.tsv: line 8: bad integer '12x' in field I3" "$T" convert criteo int.tsv o.h5
expect3 tsv-hex "hex.tsv: line 8: bad hex 'zz12' in field C6" "$T" convert criteo hex.tsv o.h5
expect3 tsv-longhex "longhex.tsv: line 8: bad hex" "$T" convert criteo longhex.tsv o.h5
expect3 tsv-label "label.tsv: line 8: bad label '2'" "$T" convert criteo label.tsv o.h5
expect3 tsv-min-count "int.tsv: line 8: bad integer" "$T" convert criteo int.tsv o.h5 --min-count 2
expect3 tsv-missing "nope.tsv: cannot open" "$T" convert criteo nope.tsv o.h5
if [ -e o.h5 ] || ls o.h5.tmp-* >/dev/null 2>&1; then echo "FAIL: converter left o.h5 or a temporary file"; fail=1; fi
# an existing output survives a failed conversion untouched
cp good.h5 keep.h5
expect3 tsv-keep "fields.tsv: line 8" "$T" convert criteo fields.tsv keep.h5 --val-fraction 0.5
cmp -s good.h5 keep.h5 || { echo "FAIL: failed conversion changed an existing output"; fail=1; }
[ -e keep-val.h5 ] && { echo "FAIL: validation file left behind"; fail=1; }
# skip mode converts the rest and reports the count
"$T" convert criteo fields.tsv skip.h5 --on-bad-line skip >/dev/null 2>skip.err || { echo "FAIL: skip mode"; fail=1; }
grep -q "skipped 1 bad line" skip.err || { echo "FAIL: skip report"; cat skip.err; fail=1; }
"$T" info skip.h5 | grep -q "skipped_lines *1" || { echo "FAIL: skipped_lines attribute"; fail=1; }

# unreadable gzip: a corrupted and a truncated stream
gzip -c "$SAMPLE" >s.tsv.gz
gz=$(wc -c <s.tsv.gz)
head -c $((gz / 2)) s.tsv.gz >cut.tsv.gz
expect3 gzip-truncated "cut.tsv.gz: unreadable gzip input" "$T" convert criteo cut.tsv.gz o.h5
{ head -c 5000 s.tsv.gz; head -c 3000 /dev/zero; tail -c +8001 s.tsv.gz; } >bad.tsv.gz
expect3 gzip-corrupt "bad.tsv.gz: unreadable gzip input" "$T" convert criteo bad.tsv.gz o.h5
[ -e o.h5 ] && { echo "FAIL: o.h5 exists after gzip failure"; fail=1; }

# --- IDX ---
printf 'garbage!' >bad.idx
printf '\000\000\010\001\000\000\000\002\001\002' >lab.idx
expect3 idx-magic "bad.idx: not an unsigned-byte IDX file" "$T" convert idx bad.idx lab.idx img.h5
printf '\000\000\010\003\000\000\000\002\000\000\000\004\000\000\000\004abc' >short.idx
expect3 idx-truncated "short.idx: truncated IDX file" "$T" convert idx short.idx lab.idx img.h5
# huge dimensions are refused before any size arithmetic (2 x 70000 x 70000)
printf '\000\000\010\003\000\000\000\002\000\001\021\160\000\001\021\160' >huge.idx
expect3 idx-huge "huge.idx: IDX dimension 1 is 70000, more than 65535" "$T" convert idx huge.idx lab.idx img.h5
[ -e img.h5 ] && { echo "FAIL: img.h5 exists after failure"; fail=1; }

# --- cddp info on a file with a corrupted attribute message (the version byte
# of the 'generator' attribute, 8 bytes before its name): no crash, exit 3 ---
"$T" gen ctr attr.h5 --rows 2000 --seed 1 >/dev/null || fail=1
off=$(grep -obUa "generator" attr.h5 | head -n 1 | cut -d: -f1)
printf '\212' | dd of=attr.h5 bs=1 seek=$((off - 8)) conv=notrunc 2>/dev/null
expect3 info-corrupt-attr "attr.h5: corrupt attribute table" "$T" info attr.h5
grep -q "rows *2000" out.txt || { echo "FAIL: info on corrupt attributes did not describe the data"; fail=1; }

# --- control bytes from the input are escaped in messages ---
mkbadtsv cr.tsv "$(head -n 1 base.tsv | awk -F'\t' 'BEGIN{OFS="\t"}{$1="\r1"; print}')"
expect3 tsv-control-bytes "cr.tsv: line 8: bad label '\\\\r1'" "$T" convert criteo cr.tsv o.h5
if tr -d '\n' <err.txt | grep -q "$(printf '\r')"; then echo "FAIL: raw carriage return in message"; fail=1; fi
mkbadtsv long.tsv "$(head -n 1 base.tsv | awk -F'\t' 'BEGIN{OFS="\t"}{$3="123456789012345678901234"; print}')"
expect3 tsv-long-int "long.tsv: line 8: bad integer '123456789012345678901234' in field I2" "$T" convert criteo long.tsv o.h5

# usage errors are exit 2, not 3
"$T" convert criteo only-one-arg >/dev/null 2>&1; [ $? = 2 ] || { echo "FAIL: usage exit code"; fail=1; }
exit $fail

;; SIMD kernels of our own for tfjs' wasm backend, working in place in its memory (imported; the
;; assembler makes a shared-memory variant for the threaded build). Pointers are byte offsets.
;; Assembled by `node scripts/assemble-wasm.js` into binary.ts; test/wasm-simd.test.ts checks that
;; the committed binary is this file's.
(module
  (import "env" "memory" (memory 1 65536 shared))

  ;; MaxPoolGrad for 2×2 windows at stride 2 inside the input (no padding), NHWC float32, channels
  ;; a multiple of 4: each gradient goes to the FIRST maximum of its window in row-major order
  ;; (strictly greater than the best so far, starting from −∞: NaN and −∞ never win), as tfjs'
  ;; cpu backend routes it; every other cell of the window gets +0. Cells no window covers (odd
  ;; sizes) are zeroed first.
  (func $maxPoolGrad2x2
    (param $x i32) (param $dy i32) (param $dx i32)
    (param $batch i32) (param $inH i32) (param $inW i32) (param $channels i32)
    (param $outH i32) (param $outW i32)
    (local $pixel i32) (local $row i32) (local $b i32) (local $oy i32) (local $ox i32)
    (local $c i32) (local $xi i32) (local $oi i32) (local $rowBase i32)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    (local $m0 v128) (local $m1 v128) (local $m2 v128) (local $m3 v128)
    (local $best v128) (local $g v128) (local $later v128)
    ;; bytes of one pixel and of one input row
    (local.set $pixel (i32.shl (local.get $channels) (i32.const 2)))
    (local.set $row (i32.mul (local.get $inW) (local.get $pixel)))
    (if (i32.or
          (i32.ne (local.get $inH) (i32.shl (local.get $outH) (i32.const 1)))
          (i32.ne (local.get $inW) (i32.shl (local.get $outW) (i32.const 1))))
      (then
        (memory.fill (local.get $dx) (i32.const 0)
          (i32.mul (i32.mul (local.get $batch) (local.get $inH)) (local.get $row)))))
    (local.set $b (i32.const 0))
    (block $batchDone (loop $batchLoop
      (br_if $batchDone (i32.ge_u (local.get $b) (local.get $batch)))
      (local.set $oy (i32.const 0))
      (block $rowsDone (loop $rowLoop
        (br_if $rowsDone (i32.ge_u (local.get $oy) (local.get $outH)))
        ;; offset of input row 2·oy of image b
        (local.set $rowBase
          (i32.mul
            (i32.add (i32.mul (local.get $b) (local.get $inH)) (i32.shl (local.get $oy) (i32.const 1)))
            (local.get $row)))
        (local.set $ox (i32.const 0))
        (block $colsDone (loop $colLoop
          (br_if $colsDone (i32.ge_u (local.get $ox) (local.get $outW)))
          (local.set $oi
            (i32.add (local.get $rowBase)
              (i32.mul (i32.shl (local.get $ox) (i32.const 1)) (local.get $pixel))))
          (local.set $c (i32.const 0))
          (block $chDone (loop $chLoop
            (br_if $chDone (i32.ge_u (local.get $c) (local.get $pixel)))
            (local.set $xi (i32.add (local.get $x) (i32.add (local.get $oi) (local.get $c))))
            (local.set $v0 (v128.load (local.get $xi)))
            (local.set $v1 (v128.load (i32.add (local.get $xi) (local.get $pixel))))
            (local.set $v2 (v128.load (i32.add (local.get $xi) (local.get $row))))
            (local.set $v3 (v128.load
              (i32.add (local.get $xi) (i32.add (local.get $row) (local.get $pixel)))))
            (local.set $g (v128.load (local.get $dy)))
            (local.set $dy (i32.add (local.get $dy) (i32.const 16)))
            ;; m_t: tap t beats the best of the taps before it
            (local.set $best (f32x4.splat (f32.const -inf)))
            (local.set $m0 (f32x4.gt (local.get $v0) (local.get $best)))
            (local.set $best (v128.bitselect (local.get $v0) (local.get $best) (local.get $m0)))
            (local.set $m1 (f32x4.gt (local.get $v1) (local.get $best)))
            (local.set $best (v128.bitselect (local.get $v1) (local.get $best) (local.get $m1)))
            (local.set $m2 (f32x4.gt (local.get $v2) (local.get $best)))
            (local.set $best (v128.bitselect (local.get $v2) (local.get $best) (local.get $m2)))
            (local.set $m3 (f32x4.gt (local.get $v3) (local.get $best)))
            ;; the winner is the last tap that beat the ones before it
            (local.set $xi (i32.add (local.get $dx) (i32.add (local.get $oi) (local.get $c))))
            (v128.store (i32.add (local.get $xi) (i32.add (local.get $row) (local.get $pixel)))
              (v128.and (local.get $g) (local.get $m3)))
            (local.set $later (local.get $m3))
            (v128.store (i32.add (local.get $xi) (local.get $row))
              (v128.and (local.get $g) (v128.andnot (local.get $m2) (local.get $later))))
            (local.set $later (v128.or (local.get $later) (local.get $m2)))
            (v128.store (i32.add (local.get $xi) (local.get $pixel))
              (v128.and (local.get $g) (v128.andnot (local.get $m1) (local.get $later))))
            (local.set $later (v128.or (local.get $later) (local.get $m1)))
            (v128.store (local.get $xi)
              (v128.and (local.get $g) (v128.andnot (local.get $m0) (local.get $later))))
            (local.set $c (i32.add (local.get $c) (i32.const 16)))
            (br $chLoop)))
          (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
          (br $colLoop)))
        (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
        (br $rowLoop)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $batchLoop)))
  )

  ;; Conv2DBackpropFilter for a block of 6 filter rows and 8 output channels, NHWC float32, the
  ;; input already padded (every tap inside it): for each row r (a tap kh, kw and an input
  ;; channel, at byte offset $o<r> within an image of x) and output channels [$co, $co + 8),
  ;;   dw[r] += Σ over images [$n0, $n1) and output positions (oh, ow) of
  ;;            x[n, oh·sH + kh, ow·sW + kw, c] · dy[n, oh, ow, co…]
  ;; summed per image in 12 registers, then added to dw (a blocked sum, for float32 accuracy).
  ;; $dw<r> are the byte addresses of dw[r][$co].
  (func $filterGrad6
    (param $x i32) (param $dy i32) (param $n0 i32) (param $n1 i32)
    (param $hp i32) (param $wp i32) (param $ci i32) (param $oh i32) (param $ow i32)
    (param $co i32) (param $outC i32) (param $sH i32) (param $sW i32)
    (param $o0 i32) (param $o1 i32) (param $o2 i32) (param $o3 i32) (param $o4 i32) (param $o5 i32)
    (param $dw0 i32) (param $dw1 i32) (param $dw2 i32) (param $dw3 i32) (param $dw4 i32) (param $dw5 i32)
    (local $n i32) (local $y i32) (local $xi i32) (local $xRow i32) (local $xp i32) (local $xEnd i32)
    (local $dyp i32) (local $image i32) (local $rowStep i32) (local $colStep i32) (local $dyStep i32)
    (local $d0 v128) (local $d1 v128) (local $s v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $a4 v128) (local $a5 v128) (local $a6 v128) (local $a7 v128) (local $a8 v128) (local $a9 v128) (local $a10 v128) (local $a11 v128)
    (local.set $colStep (i32.shl (i32.mul (local.get $sW) (local.get $ci)) (i32.const 2)))
    (local.set $rowStep
      (i32.shl (i32.mul (i32.mul (local.get $sH) (local.get $wp)) (local.get $ci)) (i32.const 2)))
    (local.set $image
      (i32.shl (i32.mul (i32.mul (local.get $hp) (local.get $wp)) (local.get $ci)) (i32.const 2)))
    (local.set $dyStep (i32.shl (local.get $outC) (i32.const 2)))
    (local.set $n (local.get $n0))
    (block $imagesDone (loop $imageLoop
      (br_if $imagesDone (i32.ge_u (local.get $n) (local.get $n1)))
      (local.set $a0 (v128.const i32x4 0 0 0 0))
      (local.set $a1 (v128.const i32x4 0 0 0 0))
      (local.set $a2 (v128.const i32x4 0 0 0 0))
      (local.set $a3 (v128.const i32x4 0 0 0 0))
      (local.set $a4 (v128.const i32x4 0 0 0 0))
      (local.set $a5 (v128.const i32x4 0 0 0 0))
      (local.set $a6 (v128.const i32x4 0 0 0 0))
      (local.set $a7 (v128.const i32x4 0 0 0 0))
      (local.set $a8 (v128.const i32x4 0 0 0 0))
      (local.set $a9 (v128.const i32x4 0 0 0 0))
      (local.set $a10 (v128.const i32x4 0 0 0 0))
      (local.set $a11 (v128.const i32x4 0 0 0 0))
      (local.set $xi (i32.add (local.get $x) (i32.mul (local.get $n) (local.get $image))))
      (local.set $dyp
        (i32.add (local.get $dy)
          (i32.shl
            (i32.add
              (i32.mul (i32.mul (i32.mul (local.get $n) (local.get $oh)) (local.get $ow))
                (local.get $outC))
              (local.get $co))
            (i32.const 2))))
      (local.set $y (i32.const 0))
      (block $rowsDone (loop $rowLoop
        (br_if $rowsDone (i32.ge_u (local.get $y) (local.get $oh)))
        (local.set $xRow (i32.add (local.get $xi) (i32.mul (local.get $y) (local.get $rowStep))))
        (local.set $xp (local.get $xRow))
        (local.set $xEnd (i32.add (local.get $xRow) (i32.mul (local.get $ow) (local.get $colStep))))
        (block $colsDone (loop $colLoop
          (br_if $colsDone (i32.ge_u (local.get $xp) (local.get $xEnd)))
          (local.set $d0 (v128.load (local.get $dyp)))
          (local.set $d1 (v128.load offset=16 (local.get $dyp)))
          (local.set $s (v128.load32_splat (i32.add (local.get $xp) (local.get $o0))))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $s) (local.get $d0))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $s) (local.get $d1))))
          (local.set $s (v128.load32_splat (i32.add (local.get $xp) (local.get $o1))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $s) (local.get $d0))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $s) (local.get $d1))))
          (local.set $s (v128.load32_splat (i32.add (local.get $xp) (local.get $o2))))
          (local.set $a4 (f32x4.add (local.get $a4) (f32x4.mul (local.get $s) (local.get $d0))))
          (local.set $a5 (f32x4.add (local.get $a5) (f32x4.mul (local.get $s) (local.get $d1))))
          (local.set $s (v128.load32_splat (i32.add (local.get $xp) (local.get $o3))))
          (local.set $a6 (f32x4.add (local.get $a6) (f32x4.mul (local.get $s) (local.get $d0))))
          (local.set $a7 (f32x4.add (local.get $a7) (f32x4.mul (local.get $s) (local.get $d1))))
          (local.set $s (v128.load32_splat (i32.add (local.get $xp) (local.get $o4))))
          (local.set $a8 (f32x4.add (local.get $a8) (f32x4.mul (local.get $s) (local.get $d0))))
          (local.set $a9 (f32x4.add (local.get $a9) (f32x4.mul (local.get $s) (local.get $d1))))
          (local.set $s (v128.load32_splat (i32.add (local.get $xp) (local.get $o5))))
          (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $s) (local.get $d0))))
          (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $s) (local.get $d1))))
          (local.set $xp (i32.add (local.get $xp) (local.get $colStep)))
          (local.set $dyp (i32.add (local.get $dyp) (local.get $dyStep)))
          (br $colLoop)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $rowLoop)))
      (v128.store (local.get $dw0) (f32x4.add (v128.load (local.get $dw0)) (local.get $a0)))
      (v128.store offset=16 (local.get $dw0)
        (f32x4.add (v128.load offset=16 (local.get $dw0)) (local.get $a1)))
      (v128.store (local.get $dw1) (f32x4.add (v128.load (local.get $dw1)) (local.get $a2)))
      (v128.store offset=16 (local.get $dw1)
        (f32x4.add (v128.load offset=16 (local.get $dw1)) (local.get $a3)))
      (v128.store (local.get $dw2) (f32x4.add (v128.load (local.get $dw2)) (local.get $a4)))
      (v128.store offset=16 (local.get $dw2)
        (f32x4.add (v128.load offset=16 (local.get $dw2)) (local.get $a5)))
      (v128.store (local.get $dw3) (f32x4.add (v128.load (local.get $dw3)) (local.get $a6)))
      (v128.store offset=16 (local.get $dw3)
        (f32x4.add (v128.load offset=16 (local.get $dw3)) (local.get $a7)))
      (v128.store (local.get $dw4) (f32x4.add (v128.load (local.get $dw4)) (local.get $a8)))
      (v128.store offset=16 (local.get $dw4)
        (f32x4.add (v128.load offset=16 (local.get $dw4)) (local.get $a9)))
      (v128.store (local.get $dw5) (f32x4.add (v128.load (local.get $dw5)) (local.get $a10)))
      (v128.store offset=16 (local.get $dw5)
        (f32x4.add (v128.load offset=16 (local.get $dw5)) (local.get $a11)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $imageLoop)))
  )

  ;; Byte offset, within a padded NHWC image of row width $wp and $ci channels, of the input tap
  ;; of filter-gradient row r = (i·kw + j)·ci + c; 0 for scratch rows (r ≥ $rows).
  (func $tap (param $r i32) (param $rows i32) (param $kw i32) (param $ci i32) (param $wp i32)
    (result i32)
    (if (result i32) (i32.ge_u (local.get $r) (local.get $rows))
      (then (i32.const 0))
      (else
        (i32.shl
          (i32.add
            (i32.mul
              (i32.add
                (i32.mul
                  (i32.div_u (local.get $r) (i32.mul (local.get $ci) (local.get $kw)))
                  (local.get $wp))
                (i32.rem_u (i32.div_u (local.get $r) (local.get $ci)) (local.get $kw)))
              (local.get $ci))
            (i32.rem_u (local.get $r) (local.get $ci)))
          (i32.const 2)))))

  ;; filterGrad6 over the blocks [$b0, $b1) of a filter gradient $dw (byte address of its
  ;; [ceil(rows/6)·6, outC] values, zeroed by the caller): block b holds rows
  ;; 6·floor(b / (outC/8)) + 0…5 and output channels 8·(b mod (outC/8)) + 0…7; rows ≥ $rows
  ;; are scratch rows. The images go $group at a time, every block passing over them while they
  ;; are in cache; each image's sum is still added to dw in image order, so the values do not
  ;; depend on $group or on how the blocks are shared out (threads may run disjoint block ranges
  ;; at once).
  (func (export "filterGradBlocks")
    (param $x i32) (param $dy i32) (param $dw i32) (param $batch i32)
    (param $hp i32) (param $wp i32) (param $ci i32) (param $oh i32) (param $ow i32)
    (param $outC i32) (param $sH i32) (param $sW i32) (param $kw i32) (param $rows i32)
    (param $group i32) (param $b0 i32) (param $b1 i32)
    (local $n0 i32) (local $n1 i32) (local $b i32) (local $colBlocks i32) (local $r i32)
    (local $co i32) (local $rowBytes i32) (local $d i32)
    (local.set $colBlocks (i32.shr_u (local.get $outC) (i32.const 3)))
    (local.set $rowBytes (i32.shl (local.get $outC) (i32.const 2)))
    (block $imagesDone (loop $imageLoop
      (br_if $imagesDone (i32.ge_u (local.get $n0) (local.get $batch)))
      (local.set $n1 (i32.add (local.get $n0) (local.get $group)))
      (if (i32.gt_u (local.get $n1) (local.get $batch)) (then (local.set $n1 (local.get $batch))))
      (local.set $b (local.get $b0))
      (block $blocksDone (loop $blockLoop
        (br_if $blocksDone (i32.ge_u (local.get $b) (local.get $b1)))
        (local.set $r (i32.mul (i32.div_u (local.get $b) (local.get $colBlocks)) (i32.const 6)))
        (local.set $co (i32.shl (i32.rem_u (local.get $b) (local.get $colBlocks)) (i32.const 3)))
        (local.set $d
          (i32.add (local.get $dw)
            (i32.shl
              (i32.add (i32.mul (local.get $r) (local.get $outC)) (local.get $co))
              (i32.const 2))))
        (call $filterGrad6
          (local.get $x) (local.get $dy) (local.get $n0) (local.get $n1)
          (local.get $hp) (local.get $wp) (local.get $ci) (local.get $oh) (local.get $ow)
          (local.get $co) (local.get $outC) (local.get $sH) (local.get $sW)
          (call $tap (local.get $r) (local.get $rows) (local.get $kw) (local.get $ci) (local.get $wp))
          (call $tap (i32.add (local.get $r) (i32.const 1)) (local.get $rows) (local.get $kw)
            (local.get $ci) (local.get $wp))
          (call $tap (i32.add (local.get $r) (i32.const 2)) (local.get $rows) (local.get $kw)
            (local.get $ci) (local.get $wp))
          (call $tap (i32.add (local.get $r) (i32.const 3)) (local.get $rows) (local.get $kw)
            (local.get $ci) (local.get $wp))
          (call $tap (i32.add (local.get $r) (i32.const 4)) (local.get $rows) (local.get $kw)
            (local.get $ci) (local.get $wp))
          (call $tap (i32.add (local.get $r) (i32.const 5)) (local.get $rows) (local.get $kw)
            (local.get $ci) (local.get $wp))
          (local.get $d)
          (i32.add (local.get $d) (local.get $rowBytes))
          (i32.add (local.get $d) (i32.shl (local.get $rowBytes) (i32.const 1)))
          (i32.add (local.get $d) (i32.mul (local.get $rowBytes) (i32.const 3)))
          (i32.add (local.get $d) (i32.shl (local.get $rowBytes) (i32.const 2)))
          (i32.add (local.get $d) (i32.mul (local.get $rowBytes) (i32.const 5))))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $blockLoop)))
      (local.set $n0 (local.get $n1))
      (br $imageLoop)))
  )

  ;; A convolution's forward pass for few input channels, NHWC float32, the input already padded
  ;; (every tap inside it), output channels a multiple of 8, no dilation:
  ;;   out[n, oy, ox, co] = act(bias[co] + Σ over taps (i, j) and channels c of
  ;;                            x[n, oy·sH + i, ox·sW + j, c] · w[i, j, c, co])
  ;; summed in that order; act is ReLU (x < 0 ? 0 : x, as tfjs' cpu) when $relu, else none; no
  ;; bias when $bias is 0. Output rows [$r0, $r1) of the batch's $batch·oh rows (threads may run
  ;; disjoint ranges at once); 4 output pixels × 8 channels at a time.
  (func (export "convForward")
    (param $x i32) (param $w i32) (param $bias i32) (param $out i32)
    (param $hp i32) (param $wp i32) (param $ci i32) (param $oh i32) (param $ow i32)
    (param $outC i32) (param $sH i32) (param $sW i32) (param $kh i32) (param $kw i32)
    (param $relu i32) (param $r0 i32) (param $r1 i32)
    (local $r i32) (local $xRow i32) (local $oRow i32) (local $co i32) (local $ox i32)
    (local $px i32) (local $wp_ i32) (local $i i32) (local $j i32) (local $k i32)
    (local $tap i32) (local $colStep i32) (local $pixBytes i32) (local $tapRowSkip i32)
    (local $tapsPerRow i32) (local $b0 v128) (local $b1 v128) (local $w0 v128) (local $w1 v128)
    (local $s v128) (local $zero v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $a4 v128) (local $a5 v128) (local $a6 v128) (local $a7 v128)
    ;; bytes: one output column's step in x; one output pixel; from a tap row's end to the next
    (local.set $colStep (i32.shl (i32.mul (local.get $sW) (local.get $ci)) (i32.const 2)))
    (local.set $pixBytes (i32.shl (local.get $outC) (i32.const 2)))
    (local.set $tapsPerRow (i32.mul (local.get $kw) (local.get $ci)))
    (local.set $tapRowSkip
      (i32.shl (i32.mul (i32.sub (local.get $wp) (local.get $kw)) (local.get $ci)) (i32.const 2)))
    (local.set $r (local.get $r0))
    (block $rowsDone (loop $rowLoop
      (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $r1)))
      ;; x row of output row r = (n, oy): ((n·hp + oy·sH)·wp)·ci floats in
      (local.set $xRow
        (i32.add (local.get $x)
          (i32.shl
            (i32.mul
              (i32.mul
                (i32.add
                  (i32.mul (i32.div_u (local.get $r) (local.get $oh)) (local.get $hp))
                  (i32.mul (i32.rem_u (local.get $r) (local.get $oh)) (local.get $sH)))
                (local.get $wp))
              (local.get $ci))
            (i32.const 2))))
      (local.set $oRow
        (i32.add (local.get $out)
          (i32.mul (i32.mul (local.get $r) (local.get $ow)) (local.get $pixBytes))))
      (local.set $co (i32.const 0))
      (block $colsDone (loop $coLoop
        (br_if $colsDone (i32.ge_u (local.get $co) (local.get $outC)))
        (if (local.get $bias)
          (then
            (local.set $b0 (v128.load (i32.add (local.get $bias) (i32.shl (local.get $co) (i32.const 2)))))
            (local.set $b1
              (v128.load offset=16 (i32.add (local.get $bias) (i32.shl (local.get $co) (i32.const 2))))))
          (else
            (local.set $b0 (v128.const i32x4 0 0 0 0))
            (local.set $b1 (v128.const i32x4 0 0 0 0))))
        (local.set $ox (i32.const 0))
        ;; 4 pixels at a time; the row's last 4 (overlapping the quad before: the same values
        ;; written twice) when fewer are left, so that only rows narrower than 4 go one by one
        (block $quadsDone (loop $quadLoop
          (br_if $quadsDone (i32.ge_u (local.get $ox) (local.get $ow)))
          (if (i32.gt_u (i32.add (local.get $ox) (i32.const 4)) (local.get $ow))
            (then
              (br_if $quadsDone (i32.lt_u (local.get $ow) (i32.const 4)))
              (local.set $ox (i32.sub (local.get $ow) (i32.const 4)))))
          (local.set $a0 (local.get $b0)) (local.set $a1 (local.get $b1))
          (local.set $a2 (local.get $b0)) (local.set $a3 (local.get $b1))
          (local.set $a4 (local.get $b0)) (local.set $a5 (local.get $b1))
          (local.set $a6 (local.get $b0)) (local.set $a7 (local.get $b1))
          (local.set $px (i32.add (local.get $xRow) (i32.mul (local.get $ox) (local.get $colStep))))
          (local.set $wp_ (i32.add (local.get $w) (i32.shl (local.get $co) (i32.const 2))))
          (local.set $i (i32.const 0))
          (block $tapRowsDone (loop $tapRowLoop
            (br_if $tapRowsDone (i32.ge_u (local.get $i) (local.get $kh)))
            (local.set $k (i32.const 0))
            (block $tapsDone (loop $tapLoop
              (br_if $tapsDone (i32.ge_u (local.get $k) (local.get $tapsPerRow)))
              (local.set $w0 (v128.load (local.get $wp_)))
              (local.set $w1 (v128.load offset=16 (local.get $wp_)))
              (local.set $s (v128.load32_splat (local.get $px)))
              (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $s) (local.get $w0))))
              (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $s) (local.get $w1))))
              (local.set $s (v128.load32_splat (i32.add (local.get $px) (local.get $colStep))))
              (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $s) (local.get $w0))))
              (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $s) (local.get $w1))))
              (local.set $s (v128.load32_splat
                (i32.add (local.get $px) (i32.shl (local.get $colStep) (i32.const 1)))))
              (local.set $a4 (f32x4.add (local.get $a4) (f32x4.mul (local.get $s) (local.get $w0))))
              (local.set $a5 (f32x4.add (local.get $a5) (f32x4.mul (local.get $s) (local.get $w1))))
              (local.set $s (v128.load32_splat
                (i32.add (local.get $px) (i32.mul (local.get $colStep) (i32.const 3)))))
              (local.set $a6 (f32x4.add (local.get $a6) (f32x4.mul (local.get $s) (local.get $w0))))
              (local.set $a7 (f32x4.add (local.get $a7) (f32x4.mul (local.get $s) (local.get $w1))))
              (local.set $px (i32.add (local.get $px) (i32.const 4)))
              (local.set $wp_ (i32.add (local.get $wp_) (local.get $pixBytes)))
              (local.set $k (i32.add (local.get $k) (i32.const 1)))
              (br $tapLoop)))
            (local.set $px (i32.add (local.get $px) (local.get $tapRowSkip)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $tapRowLoop)))
          (local.set $tap
            (i32.add (local.get $oRow)
              (i32.add (i32.mul (local.get $ox) (local.get $pixBytes)) (i32.shl (local.get $co) (i32.const 2)))))
          (if (local.get $relu)
            (then
              (local.set $zero (v128.const i32x4 0 0 0 0))
              (local.set $a0 (v128.bitselect (local.get $zero) (local.get $a0) (f32x4.lt (local.get $a0) (local.get $zero))))
              (local.set $a1 (v128.bitselect (local.get $zero) (local.get $a1) (f32x4.lt (local.get $a1) (local.get $zero))))
              (local.set $a2 (v128.bitselect (local.get $zero) (local.get $a2) (f32x4.lt (local.get $a2) (local.get $zero))))
              (local.set $a3 (v128.bitselect (local.get $zero) (local.get $a3) (f32x4.lt (local.get $a3) (local.get $zero))))
              (local.set $a4 (v128.bitselect (local.get $zero) (local.get $a4) (f32x4.lt (local.get $a4) (local.get $zero))))
              (local.set $a5 (v128.bitselect (local.get $zero) (local.get $a5) (f32x4.lt (local.get $a5) (local.get $zero))))
              (local.set $a6 (v128.bitselect (local.get $zero) (local.get $a6) (f32x4.lt (local.get $a6) (local.get $zero))))
              (local.set $a7 (v128.bitselect (local.get $zero) (local.get $a7) (f32x4.lt (local.get $a7) (local.get $zero))))))
          (v128.store (local.get $tap) (local.get $a0))
          (v128.store offset=16 (local.get $tap) (local.get $a1))
          (local.set $tap (i32.add (local.get $tap) (local.get $pixBytes)))
          (v128.store (local.get $tap) (local.get $a2))
          (v128.store offset=16 (local.get $tap) (local.get $a3))
          (local.set $tap (i32.add (local.get $tap) (local.get $pixBytes)))
          (v128.store (local.get $tap) (local.get $a4))
          (v128.store offset=16 (local.get $tap) (local.get $a5))
          (local.set $tap (i32.add (local.get $tap) (local.get $pixBytes)))
          (v128.store (local.get $tap) (local.get $a6))
          (v128.store offset=16 (local.get $tap) (local.get $a7))
          (local.set $ox (i32.add (local.get $ox) (i32.const 4)))
          (br $quadLoop)))
        ;; the last pixels, one at a time
        (block $pixelsDone (loop $pixelLoop
          (br_if $pixelsDone (i32.ge_u (local.get $ox) (local.get $ow)))
          (local.set $a0 (local.get $b0)) (local.set $a1 (local.get $b1))
          (local.set $px (i32.add (local.get $xRow) (i32.mul (local.get $ox) (local.get $colStep))))
          (local.set $wp_ (i32.add (local.get $w) (i32.shl (local.get $co) (i32.const 2))))
          (local.set $i (i32.const 0))
          (block $tapRowsDone (loop $tapRowLoop
            (br_if $tapRowsDone (i32.ge_u (local.get $i) (local.get $kh)))
            (local.set $k (i32.const 0))
            (block $tapsDone (loop $tapLoop
              (br_if $tapsDone (i32.ge_u (local.get $k) (local.get $tapsPerRow)))
              (local.set $s (v128.load32_splat (local.get $px)))
              (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $s) (v128.load (local.get $wp_)))))
              (local.set $a1
                (f32x4.add (local.get $a1) (f32x4.mul (local.get $s) (v128.load offset=16 (local.get $wp_)))))
              (local.set $px (i32.add (local.get $px) (i32.const 4)))
              (local.set $wp_ (i32.add (local.get $wp_) (local.get $pixBytes)))
              (local.set $k (i32.add (local.get $k) (i32.const 1)))
              (br $tapLoop)))
            (local.set $px (i32.add (local.get $px) (local.get $tapRowSkip)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $tapRowLoop)))
          (if (local.get $relu)
            (then
              (local.set $zero (v128.const i32x4 0 0 0 0))
              (local.set $a0 (v128.bitselect (local.get $zero) (local.get $a0) (f32x4.lt (local.get $a0) (local.get $zero))))
              (local.set $a1 (v128.bitselect (local.get $zero) (local.get $a1) (f32x4.lt (local.get $a1) (local.get $zero))))))
          (local.set $tap
            (i32.add (local.get $oRow)
              (i32.add (i32.mul (local.get $ox) (local.get $pixBytes)) (i32.shl (local.get $co) (i32.const 2)))))
          (v128.store (local.get $tap) (local.get $a0))
          (v128.store offset=16 (local.get $tap) (local.get $a1))
          (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
          (br $pixelLoop)))
        (local.set $co (i32.add (local.get $co) (i32.const 8)))
        (br $coLoop)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rowLoop)))
  )

  ;; Horizontal sum of a float32 vector: (v0 + v2) + (v1 + v3).
  (func $hsum (param $v v128) (result f32)
    (local.set $v (f32x4.add (local.get $v)
      (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))
    (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v))))

  ;; A convolution's input gradient at stride 1 without dilation, for few input channels, NHWC
  ;; float32, output channels a multiple of 4 (the forward filter w is [kh, kw, ci, outC]):
  ;;   dx[n, y, x, c] = Σ over taps (i, j) with (y + padT − i, x + padL − j) inside dy of
  ;;                    Σ_co dy[n, y + padT − i, x + padL − j, co] · w[i, j, c, co]
  ;; the channel sums 4 lanes wide, added across lanes at the end. Rows [$r0, $r1) of the
  ;; batch's n·$h rows of dx (threads may run disjoint ranges at once); pixels whose taps all lie
  ;; inside dy go 4 at a time, the others one at a time.
  (func (export "inputGradFew")
    (param $dy i32) (param $w i32) (param $dx i32) (param $h i32) (param $wd i32)
    (param $oh i32) (param $ow i32) (param $ci i32) (param $outC i32) (param $kh i32) (param $kw i32)
    (param $padT i32) (param $padL i32) (param $r0 i32) (param $r1 i32)
    (local $r i32) (local $n i32) (local $y i32) (local $x i32) (local $c i32) (local $i i32)
    (local $j i32) (local $oy i32) (local $ox i32) (local $v i32) (local $pix i32) (local $vecBytes i32)
    (local $dyRow i32) (local $p i32) (local $wt i32) (local $first i32) (local $last i32)
    (local $out i32) (local $wv v128) (local $a0 v128) (local $a1 v128) (local $a2 v128)
    (local $a3 v128)
    (local.set $pix (i32.shl (local.get $outC) (i32.const 2)))
    (local.set $vecBytes (local.get $pix))
    ;; x range whose taps all lie inside dy: x + padL − (kw − 1) ≥ 0 and x + padL ≤ ow − 1
    (local.set $first (i32.sub (i32.sub (local.get $kw) (i32.const 1)) (local.get $padL)))
    (if (i32.lt_s (local.get $first) (i32.const 0)) (then (local.set $first (i32.const 0))))
    (local.set $last (i32.sub (i32.sub (local.get $ow) (i32.const 1)) (local.get $padL)))
    (if (i32.ge_s (local.get $last) (local.get $wd))
      (then (local.set $last (i32.sub (local.get $wd) (i32.const 1)))))
    (local.set $r (local.get $r0))
    (block $rowsDone (loop $rowLoop
      (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $r1)))
      (local.set $n (i32.div_u (local.get $r) (local.get $h)))
      (local.set $y (i32.rem_u (local.get $r) (local.get $h)))
      (local.set $c (i32.const 0))
      (block $channelsDone (loop $channelLoop
        (br_if $channelsDone (i32.ge_u (local.get $c) (local.get $ci)))
        (local.set $x (i32.const 0))
        (block $pixelsDone (loop $pixelLoop
          (br_if $pixelsDone (i32.ge_s (local.get $x) (local.get $wd)))
          (local.set $a0 (v128.const i32x4 0 0 0 0)) (local.set $a1 (v128.const i32x4 0 0 0 0))
          (local.set $a2 (v128.const i32x4 0 0 0 0)) (local.set $a3 (v128.const i32x4 0 0 0 0))
          (if (i32.and
                (i32.ge_s (local.get $x) (local.get $first))
                (i32.le_s (i32.add (local.get $x) (i32.const 3)) (local.get $last)))
            (then
              ;; 4 pixels, every tap inside dy along x
              (local.set $i (i32.const 0))
              (block $tapRowsDone (loop $tapRowLoop
                (br_if $tapRowsDone (i32.ge_u (local.get $i) (local.get $kh)))
                (local.set $oy (i32.sub (i32.add (local.get $y) (local.get $padT)) (local.get $i)))
                (if (i32.and (i32.ge_s (local.get $oy) (i32.const 0)) (i32.lt_s (local.get $oy) (local.get $oh)))
                  (then
                    (local.set $dyRow
                      (i32.add (local.get $dy)
                        (i32.mul
                          (i32.mul (i32.add (i32.mul (local.get $n) (local.get $oh)) (local.get $oy)) (local.get $ow))
                          (local.get $pix))))
                    (local.set $j (i32.const 0))
                    (block $tapsDone (loop $tapLoop
                      (br_if $tapsDone (i32.ge_u (local.get $j) (local.get $kw)))
                      (local.set $ox (i32.sub (i32.add (local.get $x) (local.get $padL)) (local.get $j)))
                      (local.set $p (i32.add (local.get $dyRow) (i32.mul (local.get $ox) (local.get $pix))))
                      (local.set $wt
                        (i32.add (local.get $w)
                          (i32.mul
                            (i32.add (i32.mul (i32.add (i32.mul (local.get $i) (local.get $kw)) (local.get $j)) (local.get $ci))
                              (local.get $c))
                            (local.get $pix))))
                      (local.set $v (i32.const 0))
                      (block $vecsDone (loop $vecLoop
                        (br_if $vecsDone (i32.ge_u (local.get $v) (local.get $vecBytes)))
                        (local.set $wv (v128.load (i32.add (local.get $wt) (local.get $v))))
                (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load (i32.add (local.get $p) (local.get $v))) (local.get $wv))))
                (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load (i32.add (i32.add (local.get $p) (local.get $v)) (i32.mul (local.get $pix) (i32.const 1)))) (local.get $wv))))
                (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load (i32.add (i32.add (local.get $p) (local.get $v)) (i32.mul (local.get $pix) (i32.const 2)))) (local.get $wv))))
                (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load (i32.add (i32.add (local.get $p) (local.get $v)) (i32.mul (local.get $pix) (i32.const 3)))) (local.get $wv))))
                        (local.set $v (i32.add (local.get $v) (i32.const 16)))
                        (br $vecLoop)))
                      (local.set $j (i32.add (local.get $j) (i32.const 1)))
                      (br $tapLoop)))))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $tapRowLoop)))
              (local.set $out
                (i32.add (local.get $dx)
                  (i32.shl
                    (i32.add
                      (i32.mul (i32.add (i32.mul (local.get $r) (local.get $wd)) (local.get $x)) (local.get $ci))
                      (local.get $c))
                    (i32.const 2))))
              (f32.store (local.get $out) (call $hsum (local.get $a0)))
              (local.set $out (i32.add (local.get $out) (i32.shl (local.get $ci) (i32.const 2))))
              (f32.store (local.get $out) (call $hsum (local.get $a1)))
              (local.set $out (i32.add (local.get $out) (i32.shl (local.get $ci) (i32.const 2))))
              (f32.store (local.get $out) (call $hsum (local.get $a2)))
              (local.set $out (i32.add (local.get $out) (i32.shl (local.get $ci) (i32.const 2))))
              (f32.store (local.get $out) (call $hsum (local.get $a3)))
              (local.set $x (i32.add (local.get $x) (i32.const 4))))
            (else
              ;; one pixel, taps checked along x too
              (local.set $i (i32.const 0))
              (block $tapRowsDone (loop $tapRowLoop
                (br_if $tapRowsDone (i32.ge_u (local.get $i) (local.get $kh)))
                (local.set $oy (i32.sub (i32.add (local.get $y) (local.get $padT)) (local.get $i)))
                (if (i32.and (i32.ge_s (local.get $oy) (i32.const 0)) (i32.lt_s (local.get $oy) (local.get $oh)))
                  (then
                    (local.set $dyRow
                      (i32.add (local.get $dy)
                        (i32.mul
                          (i32.mul (i32.add (i32.mul (local.get $n) (local.get $oh)) (local.get $oy)) (local.get $ow))
                          (local.get $pix))))
                    (local.set $j (i32.const 0))
                    (block $tapsDone (loop $tapLoop
                      (br_if $tapsDone (i32.ge_u (local.get $j) (local.get $kw)))
                      (local.set $ox (i32.sub (i32.add (local.get $x) (local.get $padL)) (local.get $j)))
                      (if (i32.and (i32.ge_s (local.get $ox) (i32.const 0)) (i32.lt_s (local.get $ox) (local.get $ow)))
                        (then
                          (local.set $p (i32.add (local.get $dyRow) (i32.mul (local.get $ox) (local.get $pix))))
                          (local.set $wt
                            (i32.add (local.get $w)
                              (i32.mul
                                (i32.add (i32.mul (i32.add (i32.mul (local.get $i) (local.get $kw)) (local.get $j)) (local.get $ci))
                                  (local.get $c))
                                (local.get $pix))))
                          (local.set $v (i32.const 0))
                          (block $vecsDone (loop $vecLoop
                            (br_if $vecsDone (i32.ge_u (local.get $v) (local.get $vecBytes)))
                            (local.set $a0
                              (f32x4.add (local.get $a0)
                                (f32x4.mul (v128.load (i32.add (local.get $p) (local.get $v)))
                                  (v128.load (i32.add (local.get $wt) (local.get $v))))))
                            (local.set $v (i32.add (local.get $v) (i32.const 16)))
                            (br $vecLoop)))))
                      (local.set $j (i32.add (local.get $j) (i32.const 1)))
                      (br $tapLoop)))))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $tapRowLoop)))
              (f32.store
                (i32.add (local.get $dx)
                  (i32.shl
                    (i32.add
                      (i32.mul (i32.add (i32.mul (local.get $r) (local.get $wd)) (local.get $x)) (local.get $ci))
                      (local.get $c))
                    (i32.const 2)))
                (call $hsum (local.get $a0)))
              (local.set $x (i32.add (local.get $x) (i32.const 1)))))
          (br $pixelLoop)))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $channelLoop)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rowLoop)))
  )

  ;; out = −1 where x < 0, 1 where x > 0, else +0 (NaN and −0 included), as tfjs' cpu Sign; $n
  ;; float32 values, 4 at a time, then one at a time.
  (func $sign (param $x i32) (param $out i32) (param $n i32)
    (local $end i32) (local $tail i32) (local $v v128) (local $s f32)
    (local.set $tail (i32.add (local.get $out) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $end
      (i32.add (local.get $out) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $done (loop $vectors
      (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
      (local.set $v (v128.load (local.get $x)))
      ;; (x > 0 ? 1.0 : 0) | (x < 0 ? −1.0 : 0): the two masks never overlap
      (v128.store (local.get $out)
        (v128.or
          (v128.and (f32x4.gt (local.get $v) (f32x4.splat (f32.const 0))) (f32x4.splat (f32.const 1)))
          (v128.and (f32x4.lt (local.get $v) (f32x4.splat (f32.const 0))) (f32x4.splat (f32.const -1)))))
      (local.set $x (i32.add (local.get $x) (i32.const 16)))
      (local.set $out (i32.add (local.get $out) (i32.const 16)))
      (br $vectors)))
    (block $done (loop $scalars
      (br_if $done (i32.ge_u (local.get $out) (local.get $tail)))
      (local.set $s (f32.load (local.get $x)))
      (f32.store (local.get $out)
        (select (f32.const 1)
          (select (f32.const -1) (f32.const 0) (f32.lt (local.get $s) (f32.const 0)))
          (f32.gt (local.get $s) (f32.const 0))))
      (local.set $x (i32.add (local.get $x) (i32.const 4)))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (br $scalars))))

  ;; Byte address of output position p's window corner in a padded NHWC input (see patchRows4).
  (func $corner (param $x i32) (param $p i32) (param $n0 i32) (param $hp i32) (param $wp i32)
    (param $ci i32) (param $oh i32) (param $ow i32) (param $sH i32) (param $sW i32) (result i32)
    (i32.add (local.get $x)
      (i32.shl
        (i32.mul
          (i32.add
            (i32.mul
              (i32.add
                (i32.mul
                  (i32.add (local.get $n0)
                    (i32.div_u (local.get $p) (i32.mul (local.get $oh) (local.get $ow))))
                  (local.get $hp))
                (i32.mul
                  (i32.rem_u (i32.div_u (local.get $p) (local.get $ow)) (local.get $oh))
                  (local.get $sH)))
              (local.get $wp))
            (i32.mul (i32.rem_u (local.get $p) (local.get $ow)) (local.get $sW)))
          (local.get $ci))
        (i32.const 2))))

  ;; The patches of a padded NHWC float32 input as rows, for a filter gradient `rows · dy`:
  ;; cols[(i·kw + j)·ci + c][p] = x[n, oh·sH + i, ow·sW + j, c] for the output positions
  ;; p = (n − n0, oh, ow) of images [n0, n1), ci a multiple of 4. Positions go in blocks of 64
  ;; (their window corners first written to $scratch, 64 i32), so that each row is written 256
  ;; contiguous bytes at a time; within a block, 4 positions at a time: each tap's channels are
  ;; loaded 4 × 4 and transposed in registers into 4 rows.
  (func (export "patchRows4")
    (param $x i32) (param $cols i32) (param $n0 i32) (param $n1 i32)
    (param $hp i32) (param $wp i32) (param $ci i32) (param $oh i32) (param $ow i32)
    (param $sH i32) (param $sW i32) (param $kh i32) (param $kw i32) (param $scratch i32)
    (local $positions i32) (local $rowBytes i32) (local $p i32) (local $d i32) (local $q i32)
    (local $b0 i32) (local $b1 i32) (local $b2 i32) (local $b3 i32)
    (local $i i32) (local $j i32) (local $c i32) (local $tap i32) (local $pixel i32)
    (local $blockEnd i32) (local $row i32) (local $g i32) (local $groupsEnd i32)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local.set $positions
      (i32.mul (i32.sub (local.get $n1) (local.get $n0)) (i32.mul (local.get $oh) (local.get $ow))))
    (local.set $rowBytes (i32.shl (local.get $positions) (i32.const 2)))
    (local.set $pixel (i32.shl (local.get $ci) (i32.const 2)))
    (local.set $p (i32.const 0))
    (block $blocksDone (loop $blocks
      ;; whole groups of 4 only; the last (fewer than 4) positions are the tail below
      (local.set $blockEnd (i32.add (local.get $p) (i32.const 64)))
      (if (i32.gt_u (local.get $blockEnd) (i32.and (local.get $positions) (i32.const -4)))
        (then (local.set $blockEnd (i32.and (local.get $positions) (i32.const -4)))))
      (br_if $blocksDone (i32.ge_u (local.get $p) (local.get $blockEnd)))
      ;; window corners of the block's positions
      (local.set $q (local.get $p))
      (block $cornersDone (loop $corners
        (br_if $cornersDone (i32.ge_u (local.get $q) (local.get $blockEnd)))
        (i32.store
          (i32.add (local.get $scratch) (i32.shl (i32.sub (local.get $q) (local.get $p)) (i32.const 2)))
          (call $corner (local.get $x) (local.get $q) (local.get $n0) (local.get $hp) (local.get $wp)
            (local.get $ci) (local.get $oh) (local.get $ow) (local.get $sH) (local.get $sW)))
        (local.set $q (i32.add (local.get $q) (i32.const 1)))
        (br $corners)))
      (local.set $groupsEnd
        (i32.add (local.get $scratch) (i32.shl (i32.sub (local.get $blockEnd) (local.get $p)) (i32.const 2))))
      ;; $row: where row 0 of this block starts; rows follow $rowBytes apart
      (local.set $row (i32.add (local.get $cols) (i32.shl (local.get $p) (i32.const 2))))
      (local.set $i (i32.const 0))
      (block $iDone (loop $iLoop
        (br_if $iDone (i32.ge_u (local.get $i) (local.get $kh)))
        (local.set $j (i32.const 0))
        (block $jDone (loop $jLoop
          (br_if $jDone (i32.ge_u (local.get $j) (local.get $kw)))
          (local.set $c
            (i32.mul
              (i32.add (i32.mul (local.get $i) (local.get $wp)) (local.get $j))
              (local.get $pixel)))
          (local.set $tap (i32.add (local.get $c) (local.get $pixel)))
          (block $cDone (loop $cLoop
            (br_if $cDone (i32.ge_u (local.get $c) (local.get $tap)))
            (local.set $g (local.get $scratch))
            (local.set $d (local.get $row))
            (block $gDone (loop $gLoop
              (br_if $gDone (i32.ge_u (local.get $g) (local.get $groupsEnd)))
              (local.set $b0 (i32.add (i32.load (local.get $g)) (local.get $c)))
              (local.set $b1 (i32.add (i32.load offset=4 (local.get $g)) (local.get $c)))
              (local.set $b2 (i32.add (i32.load offset=8 (local.get $g)) (local.get $c)))
              (local.set $b3 (i32.add (i32.load offset=12 (local.get $g)) (local.get $c)))
              (local.set $v0 (v128.load (local.get $b0)))
              (local.set $v1 (v128.load (local.get $b1)))
              (local.set $v2 (v128.load (local.get $b2)))
              (local.set $v3 (v128.load (local.get $b3)))
              ;; 4 × 4 transpose: row k of the result holds channel k of the four positions
              (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $v0) (local.get $v1)))
              (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $v0) (local.get $v1)))
              (local.set $t2 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $v2) (local.get $v3)))
              (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $v2) (local.get $v3)))
              (v128.store (local.get $d)
                (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t2)))
              (v128.store (i32.add (local.get $d) (local.get $rowBytes))
                (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t2)))
              (v128.store (i32.add (local.get $d) (i32.shl (local.get $rowBytes) (i32.const 1)))
                (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t3)))
              (v128.store (i32.add (local.get $d) (i32.mul (local.get $rowBytes) (i32.const 3)))
                (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t3)))
              (local.set $g (i32.add (local.get $g) (i32.const 16)))
              (local.set $d (i32.add (local.get $d) (i32.const 16)))
              (br $gLoop)))
            (local.set $row (i32.add (local.get $row) (i32.shl (local.get $rowBytes) (i32.const 2))))
            (local.set $c (i32.add (local.get $c) (i32.const 16)))
            (br $cLoop)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $jLoop)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $iLoop)))
      (local.set $p (local.get $blockEnd))
      (br $blocks)))
    ;; the last positions (fewer than 4), one value at a time
    (block $tailDone (loop $tail
      (br_if $tailDone (i32.ge_u (local.get $p) (local.get $positions)))
      (local.set $b0 (call $corner (local.get $x) (local.get $p) (local.get $n0) (local.get $hp)
        (local.get $wp) (local.get $ci) (local.get $oh) (local.get $ow) (local.get $sH) (local.get $sW)))
      (local.set $d (i32.add (local.get $cols) (i32.shl (local.get $p) (i32.const 2))))
      (local.set $i (i32.const 0))
      (block $iDone (loop $iLoop
        (br_if $iDone (i32.ge_u (local.get $i) (local.get $kh)))
        (local.set $j (i32.const 0))
        (block $jDone (loop $jLoop
          (br_if $jDone (i32.ge_u (local.get $j) (local.get $kw)))
          (local.set $tap
            (i32.add (local.get $b0)
              (i32.mul
                (i32.add (i32.mul (local.get $i) (local.get $wp)) (local.get $j))
                (local.get $pixel))))
          (local.set $c (i32.const 0))
          (block $cDone (loop $cLoop
            (br_if $cDone (i32.ge_u (local.get $c) (local.get $pixel)))
            (f32.store (local.get $d) (f32.load (i32.add (local.get $tap) (local.get $c))))
            (local.set $d (i32.add (local.get $d) (local.get $rowBytes)))
            (local.set $c (i32.add (local.get $c) (i32.const 4)))
            (br $cLoop)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $jLoop)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $iLoop)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $tail)))
  )

  ;; ReLU's gradient in one pass: out = dy · step(x), step(x) = NaN where x is NaN, 1 where x > 0,
  ;; else 0 (tfjs' Step): the same IEEE products as tfjs' mul(dy, step(x)) (dy·0 keeps its sign,
  ;; ∞·0 is NaN). $n float32 values, 4 at a time, then one at a time.
  (func $reluGrad (param $x i32) (param $dy i32) (param $out i32) (param $n i32)
    (local $end i32) (local $tail i32) (local $v v128) (local $s f32)
    (local.set $tail (i32.add (local.get $out) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $end
      (i32.add (local.get $out) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $done (loop $vectors
      (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
      (local.set $v (v128.load (local.get $x)))
      (v128.store (local.get $out)
        (f32x4.mul (v128.load (local.get $dy))
          (v128.bitselect
            (local.get $v)
            (v128.and (f32x4.gt (local.get $v) (f32x4.splat (f32.const 0))) (f32x4.splat (f32.const 1)))
            (f32x4.ne (local.get $v) (local.get $v)))))
      (local.set $x (i32.add (local.get $x) (i32.const 16)))
      (local.set $dy (i32.add (local.get $dy) (i32.const 16)))
      (local.set $out (i32.add (local.get $out) (i32.const 16)))
      (br $vectors)))
    (block $done (loop $scalars
      (br_if $done (i32.ge_u (local.get $out) (local.get $tail)))
      (local.set $s (f32.load (local.get $x)))
      (f32.store (local.get $out)
        (f32.mul (f32.load (local.get $dy))
          (select (local.get $s)
            (select (f32.const 1) (f32.const 0) (f32.gt (local.get $s) (f32.const 0)))
            (f32.ne (local.get $s) (local.get $s)))))
      (local.set $x (i32.add (local.get $x) (i32.const 4)))
      (local.set $dy (i32.add (local.get $dy) (i32.const 4)))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (br $scalars))))

  ;; Sums over the last axis: out[r] = Σ_c x[r][c] for $rows rows of $width values ($width a
  ;; multiple of 4), 4 columns at a time, then across the 4 lanes.
  (func (export "rowSum") (param $x i32) (param $out i32) (param $rows i32) (param $width i32)
    (local $end i32) (local $rowEnd i32) (local $acc v128) (local $bytes i32)
    (local.set $bytes (i32.shl (local.get $width) (i32.const 2)))
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $rows) (i32.const 2))))
    (block $done (loop $rowLoop
      (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
      (local.set $rowEnd (i32.add (local.get $x) (local.get $bytes)))
      (local.set $acc (v128.const i32x4 0 0 0 0))
      (block $rowDone (loop $cols
        (br_if $rowDone (i32.ge_u (local.get $x) (local.get $rowEnd)))
        (local.set $acc (f32x4.add (local.get $acc) (v128.load (local.get $x))))
        (local.set $x (i32.add (local.get $x) (i32.const 16)))
        (br $cols)))
      ;; (a0 + a2) + (a1 + a3)
      (local.set $acc (f32x4.add (local.get $acc)
        (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $acc) (local.get $acc))))
      (f32.store (local.get $out)
        (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc))))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (br $rowLoop))))

  ;; Sums over the leading axis: out[c] = Σ_r x[r][c] for $rows rows of $width values ($width a
  ;; multiple of 4), 16 columns per pass (4 at the end), summed in three levels for float32
  ;; accuracy: rows in blocks of 64, blocks in groups of 64 (4,096 rows), then the groups.
  (func (export "columnSum") (param $x i32) (param $out i32) (param $rows i32) (param $width i32)
    (local $c i32) (local $r i32) (local $blockEnd i32) (local $groupEnd i32) (local $p i32)
    (local $bytes i32) (local $wide i32)
    (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local $g0 v128) (local $g1 v128) (local $g2 v128) (local $g3 v128)
    (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128)
    (local.set $bytes (i32.shl (local.get $width) (i32.const 2)))
    (block $colsDone (loop $colLoop
      (br_if $colsDone (i32.ge_u (local.get $c) (local.get $bytes)))
      ;; 16 columns when that many are left, else 4 (the other lanes then stay 0, unstored)
      (local.set $wide (i32.le_u (i32.add (local.get $c) (i32.const 64)) (local.get $bytes)))
      (local.set $t0 (v128.const i32x4 0 0 0 0)) (local.set $t1 (v128.const i32x4 0 0 0 0))
      (local.set $t2 (v128.const i32x4 0 0 0 0)) (local.set $t3 (v128.const i32x4 0 0 0 0))
      (local.set $p (i32.add (local.get $x) (local.get $c)))
      (local.set $r (i32.const 0))
      (block $groupsDone (loop $groupLoop
        (br_if $groupsDone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $groupEnd (i32.add (local.get $r) (i32.const 4096)))
        (if (i32.gt_u (local.get $groupEnd) (local.get $rows))
          (then (local.set $groupEnd (local.get $rows))))
        (local.set $g0 (v128.const i32x4 0 0 0 0)) (local.set $g1 (v128.const i32x4 0 0 0 0))
        (local.set $g2 (v128.const i32x4 0 0 0 0)) (local.set $g3 (v128.const i32x4 0 0 0 0))
        (block $blocksDone (loop $blockLoop
          (br_if $blocksDone (i32.ge_u (local.get $r) (local.get $groupEnd)))
          (local.set $blockEnd (i32.add (local.get $r) (i32.const 64)))
          (if (i32.gt_u (local.get $blockEnd) (local.get $groupEnd))
            (then (local.set $blockEnd (local.get $groupEnd))))
          (local.set $b0 (v128.const i32x4 0 0 0 0)) (local.set $b1 (v128.const i32x4 0 0 0 0))
          (local.set $b2 (v128.const i32x4 0 0 0 0)) (local.set $b3 (v128.const i32x4 0 0 0 0))
          (if (local.get $wide)
            (then
              (block $done (loop $rowLoop
                (br_if $done (i32.ge_u (local.get $r) (local.get $blockEnd)))
                (local.set $b0 (f32x4.add (local.get $b0) (v128.load (local.get $p))))
                (local.set $b1 (f32x4.add (local.get $b1) (v128.load offset=16 (local.get $p))))
                (local.set $b2 (f32x4.add (local.get $b2) (v128.load offset=32 (local.get $p))))
                (local.set $b3 (f32x4.add (local.get $b3) (v128.load offset=48 (local.get $p))))
                (local.set $p (i32.add (local.get $p) (local.get $bytes)))
                (local.set $r (i32.add (local.get $r) (i32.const 1)))
                (br $rowLoop))))
            (else
              (block $done (loop $rowLoop
                (br_if $done (i32.ge_u (local.get $r) (local.get $blockEnd)))
                (local.set $b0 (f32x4.add (local.get $b0) (v128.load (local.get $p))))
                (local.set $p (i32.add (local.get $p) (local.get $bytes)))
                (local.set $r (i32.add (local.get $r) (i32.const 1)))
                (br $rowLoop)))))
          (local.set $g0 (f32x4.add (local.get $g0) (local.get $b0)))
          (local.set $g1 (f32x4.add (local.get $g1) (local.get $b1)))
          (local.set $g2 (f32x4.add (local.get $g2) (local.get $b2)))
          (local.set $g3 (f32x4.add (local.get $g3) (local.get $b3)))
          (br $blockLoop)))
        (local.set $t0 (f32x4.add (local.get $t0) (local.get $g0)))
        (local.set $t1 (f32x4.add (local.get $t1) (local.get $g1)))
        (local.set $t2 (f32x4.add (local.get $t2) (local.get $g2)))
        (local.set $t3 (f32x4.add (local.get $t3) (local.get $g3)))
        (br $groupLoop)))
      (v128.store (i32.add (local.get $out) (local.get $c)) (local.get $t0))
      (if (local.get $wide)
        (then
          (v128.store offset=16 (i32.add (local.get $out) (local.get $c)) (local.get $t1))
          (v128.store offset=32 (i32.add (local.get $out) (local.get $c)) (local.get $t2))
          (v128.store offset=48 (i32.add (local.get $out) (local.get $c)) (local.get $t3))
          (local.set $c (i32.add (local.get $c) (i32.const 64))))
        (else (local.set $c (i32.add (local.get $c) (i32.const 16)))))
      (br $colLoop)))
  )

  ;; One Adam step as tfjs' AdamOptimizer takes it, operation for operation in float32 (so the same
  ;; values): m' = m·β1 + g·(1 − β1), v' = v·β2 + g²·(1 − β2),
  ;; w' = (m'/$a1) / (√(v'/$a2) + ε) · (−lr) + w, with $a1 = 1 − β1ᵗ and $a2 = 1 − β2ᵗ.
  ;; Reads $w $m $v $g and writes $w1 $m1 $v1 ($n float32 values each; an output may be its own
  ;; input, since each value is read before it is written), 4 at a time, then one at a time.
  (func (export "adam") (param $w i32) (param $m i32) (param $v i32) (param $g i32)
    (param $w1 i32) (param $m1 i32) (param $v1 i32) (param $n i32)
    (param $b1 f32) (param $c1 f32) (param $b2 f32) (param $c2 f32)
    (param $a1 f32) (param $a2 f32) (param $eps f32) (param $negLr f32)
    (local $i i32) (local $end i32) (local $tail i32)
    (local $B1 v128) (local $C1 v128) (local $B2 v128) (local $C2 v128)
    (local $A1 v128) (local $A2 v128) (local $EPS v128) (local $LR v128)
    (local $gv v128) (local $mv v128) (local $vv v128)
    (local $gs f32) (local $ms f32) (local $vs f32)
    (local.set $B1 (f32x4.splat (local.get $b1))) (local.set $C1 (f32x4.splat (local.get $c1)))
    (local.set $B2 (f32x4.splat (local.get $b2))) (local.set $C2 (f32x4.splat (local.get $c2)))
    (local.set $A1 (f32x4.splat (local.get $a1))) (local.set $A2 (f32x4.splat (local.get $a2)))
    (local.set $EPS (f32x4.splat (local.get $eps))) (local.set $LR (f32x4.splat (local.get $negLr)))
    (local.set $tail (i32.shl (local.get $n) (i32.const 2)))
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (block $done (loop $vectors
      (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $gv (v128.load (i32.add (local.get $g) (local.get $i))))
      (local.set $mv
        (f32x4.add
          (f32x4.mul (v128.load (i32.add (local.get $m) (local.get $i))) (local.get $B1))
          (f32x4.mul (local.get $gv) (local.get $C1))))
      (local.set $vv
        (f32x4.add
          (f32x4.mul (v128.load (i32.add (local.get $v) (local.get $i))) (local.get $B2))
          (f32x4.mul (f32x4.mul (local.get $gv) (local.get $gv)) (local.get $C2))))
      (v128.store (i32.add (local.get $w1) (local.get $i))
        (f32x4.add
          (f32x4.mul
            (f32x4.div
              (f32x4.div (local.get $mv) (local.get $A1))
              (f32x4.add (f32x4.sqrt (f32x4.div (local.get $vv) (local.get $A2))) (local.get $EPS)))
            (local.get $LR))
          (v128.load (i32.add (local.get $w) (local.get $i)))))
      (v128.store (i32.add (local.get $m1) (local.get $i)) (local.get $mv))
      (v128.store (i32.add (local.get $v1) (local.get $i)) (local.get $vv))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $vectors)))
    (block $done (loop $scalars
      (br_if $done (i32.ge_u (local.get $i) (local.get $tail)))
      (local.set $gs (f32.load (i32.add (local.get $g) (local.get $i))))
      (local.set $ms
        (f32.add
          (f32.mul (f32.load (i32.add (local.get $m) (local.get $i))) (local.get $b1))
          (f32.mul (local.get $gs) (local.get $c1))))
      (local.set $vs
        (f32.add
          (f32.mul (f32.load (i32.add (local.get $v) (local.get $i))) (local.get $b2))
          (f32.mul (f32.mul (local.get $gs) (local.get $gs)) (local.get $c2))))
      (f32.store (i32.add (local.get $w1) (local.get $i))
        (f32.add
          (f32.mul
            (f32.div
              (f32.div (local.get $ms) (local.get $a1))
              (f32.add (f32.sqrt (f32.div (local.get $vs) (local.get $a2))) (local.get $eps)))
            (local.get $negLr))
          (f32.load (i32.add (local.get $w) (local.get $i)))))
      (f32.store (i32.add (local.get $m1) (local.get $i)) (local.get $ms))
      (f32.store (i32.add (local.get $v1) (local.get $i)) (local.get $vs))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $scalars))))

  ;; Range forms of element-wise and per-image kernels, for threads sharing one call: each takes
  ;; the part [$first, $end) of its work (values, or images) as its last two arguments.
  (func (export "signRange") (param $x i32) (param $out i32) (param $first i32) (param $end i32)
    (call $sign
      (i32.add (local.get $x) (i32.shl (local.get $first) (i32.const 2)))
      (i32.add (local.get $out) (i32.shl (local.get $first) (i32.const 2)))
      (i32.sub (local.get $end) (local.get $first))))

  (func (export "reluGradRange")
    (param $x i32) (param $dy i32) (param $out i32) (param $first i32) (param $end i32)
    (call $reluGrad
      (i32.add (local.get $x) (i32.shl (local.get $first) (i32.const 2)))
      (i32.add (local.get $dy) (i32.shl (local.get $first) (i32.const 2)))
      (i32.add (local.get $out) (i32.shl (local.get $first) (i32.const 2)))
      (i32.sub (local.get $end) (local.get $first))))

  ;; maxPoolGrad2x2 over images [$first, $end).
  (func (export "maxPoolGrad2x2Range")
    (param $x i32) (param $dy i32) (param $dx i32) (param $inH i32) (param $inW i32)
    (param $channels i32) (param $outH i32) (param $outW i32) (param $first i32) (param $end i32)
    (local $inBytes i32) (local $outBytes i32)
    (local.set $inBytes
      (i32.shl (i32.mul (i32.mul (local.get $inH) (local.get $inW)) (local.get $channels)) (i32.const 2)))
    (local.set $outBytes
      (i32.shl (i32.mul (i32.mul (local.get $outH) (local.get $outW)) (local.get $channels)) (i32.const 2)))
    (call $maxPoolGrad2x2
      (i32.add (local.get $x) (i32.mul (local.get $first) (local.get $inBytes)))
      (i32.add (local.get $dy) (i32.mul (local.get $first) (local.get $outBytes)))
      (i32.add (local.get $dx) (i32.mul (local.get $first) (local.get $inBytes)))
      (i32.sub (local.get $end) (local.get $first))
      (local.get $inH) (local.get $inW) (local.get $channels) (local.get $outH) (local.get $outW)))

  ;; MaxPool for 2×2 windows at stride 2 inside the input (no padding), NHWC float32, channels a
  ;; multiple of 4, as tfjs' cpu computes it: from −∞, a value replaces the best so far only when
  ;; strictly greater, in row-major window order (NaN never wins; an all-NaN window gives −∞).
  ;; Output rows [$r0, $r1) of the batch's n·outH rows (threads may run disjoint ranges at once).
  (func (export "maxPool2x2")
    (param $x i32) (param $out i32) (param $inH i32) (param $inW i32) (param $c i32)
    (param $outH i32) (param $outW i32) (param $r0 i32) (param $r1 i32)
    (local $r i32) (local $p i32) (local $o i32) (local $ox i32) (local $cv i32) (local $pix i32)
    (local $rowBytes i32) (local $q i32) (local $v v128) (local $best v128)
    (local.set $pix (i32.shl (local.get $c) (i32.const 2)))
    (local.set $rowBytes (i32.mul (local.get $inW) (local.get $pix)))
    (local.set $r (local.get $r0))
    (block $rowsDone (loop $rowLoop
      (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $r1)))
      ;; input row 2·oy of image n, for output row r = (n, oy)
      (local.set $p
        (i32.add (local.get $x)
          (i32.mul
            (i32.add
              (i32.mul (i32.div_u (local.get $r) (local.get $outH)) (local.get $inH))
              (i32.shl (i32.rem_u (local.get $r) (local.get $outH)) (i32.const 1)))
            (local.get $rowBytes))))
      (local.set $o
        (i32.add (local.get $out) (i32.mul (i32.mul (local.get $r) (local.get $outW)) (local.get $pix))))
      (local.set $ox (i32.const 0))
      (block $colsDone (loop $colLoop
        (br_if $colsDone (i32.ge_u (local.get $ox) (local.get $outW)))
        (local.set $cv (i32.const 0))
        (block $vecsDone (loop $vecLoop
          (br_if $vecsDone (i32.ge_u (local.get $cv) (local.get $pix)))
          (local.set $q (i32.add (local.get $p) (local.get $cv)))
          (local.set $best (v128.const f32x4 -inf -inf -inf -inf))
          (local.set $v (v128.load (local.get $q)))
          (local.set $best (v128.bitselect (local.get $v) (local.get $best) (f32x4.gt (local.get $v) (local.get $best))))
          (local.set $v (v128.load (i32.add (local.get $q) (local.get $pix))))
          (local.set $best (v128.bitselect (local.get $v) (local.get $best) (f32x4.gt (local.get $v) (local.get $best))))
          (local.set $v (v128.load (i32.add (local.get $q) (local.get $rowBytes))))
          (local.set $best (v128.bitselect (local.get $v) (local.get $best) (f32x4.gt (local.get $v) (local.get $best))))
          (local.set $v (v128.load (i32.add (i32.add (local.get $q) (local.get $rowBytes)) (local.get $pix))))
          (local.set $best (v128.bitselect (local.get $v) (local.get $best) (f32x4.gt (local.get $v) (local.get $best))))
          (v128.store (i32.add (local.get $o) (local.get $cv)) (local.get $best))
          (local.set $cv (i32.add (local.get $cv) (i32.const 16)))
          (br $vecLoop)))
        (local.set $p (i32.add (local.get $p) (i32.shl (local.get $pix) (i32.const 1))))
        (local.set $o (i32.add (local.get $o) (local.get $pix)))
        (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
        (br $colLoop)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rowLoop)))
  )
)

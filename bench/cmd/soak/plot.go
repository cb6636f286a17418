package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Panel geometry of the plot: one panel a series, stacked.
const (
	plotWidth   = 720
	panelHeight = 130
	marginLeft  = 70
	marginRight = 20
	marginTop   = 22
	marginBot   = 18
)

var (
	ink    = color.RGBA{0x20, 0x20, 0x20, 0xff}
	grid   = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	line   = color.RGBA{0x1f, 0x77, 0xb4, 0xff}
	shaded = color.RGBA{0xf2, 0xf2, 0xf2, 0xff}
)

// plotPNG draws each series against time, the warm-up shaded, each panel
// scaled from zero to its maximum so that growth shows as a slope.
func plotPNG(path string, samples []sample, warmup time.Duration) error {
	img := image.NewRGBA(image.Rect(0, 0, plotWidth, panelHeight*len(series)))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	var end time.Duration
	if len(samples) > 0 {
		end = samples[len(samples)-1].at
	}
	for i, g := range series {
		top := i * panelHeight
		area := image.Rect(marginLeft, top+marginTop, plotWidth-marginRight, top+panelHeight-marginBot)
		hi := 0.0
		for _, s := range samples {
			hi = max(hi, g.value(s))
		}
		if hi == 0 {
			hi = 1
		}
		x := func(at time.Duration) int {
			if end == 0 {
				return area.Min.X
			}
			return area.Min.X + int(float64(area.Dx())*float64(at)/float64(end))
		}
		y := func(v float64) int { return area.Max.Y - int(float64(area.Dy())*v/hi) }
		if warmup > 0 && end > 0 {
			draw.Draw(img, image.Rect(area.Min.X, area.Min.Y, min(x(warmup), area.Max.X), area.Max.Y), image.NewUniform(shaded), image.Point{}, draw.Src)
		}
		for _, v := range []float64{0, hi / 2, hi} {
			hline(img, area.Min.X, area.Max.X, y(v), grid)
			label(img, 4, y(v)+4, fmt.Sprintf("%.4g", v))
		}
		label(img, marginLeft, top+14, g.name+unitSuffix(g.unit))
		label(img, area.Max.X-60, top+panelHeight-4, end.Round(time.Second).String())
		for j := 1; j < len(samples); j++ {
			segment(img, x(samples[j-1].at), y(g.value(samples[j-1])), x(samples[j].at), y(g.value(samples[j])), line)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

func unitSuffix(u string) string {
	if u == "" {
		return ""
	}
	return " (" + u + ")"
}

func label(img *image.RGBA, x, y int, s string) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(ink), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func hline(img *image.RGBA, x0, x1, y int, c color.Color) {
	for x := x0; x <= x1; x++ {
		img.Set(x, y, c)
	}
}

// segment draws a line from (x0, y0) to (x1, y1), two pixels thick.
func segment(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	steps := max(abs(x1-x0), abs(y1-y0), 1)
	for i := 0; i <= steps; i++ {
		x := x0 + (x1-x0)*i/steps
		y := y0 + (y1-y0)*i/steps
		img.Set(x, y, c)
		img.Set(x, y+1, c)
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

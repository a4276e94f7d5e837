"""PicoStim's instrument state: leads, global output, faults, limits, lock, session, presets.

`execute(line, now)` runs one received line and returns the reply line or None; `service(now)`
runs on every pass of the main loop: interlock, button, heartbeat, session timer, amplitude
ramps and the status LED. Time is passed in (ticks_ms), never read here. Commands live in
common_cmds, source_cmds and system_cmds; this module holds what they act on.
"""

from stim import limits, safety, segments, store
from stim.amplitude import Amplitude
from stim.common_cmds import CommonCommands
from stim.errors import OUT_OF_MEMORY, SETTINGS_CONFLICT, ErrorQueue, ScpiError, define
from stim.eventlog import EventLog
from stim.lockbox import LockBox
from stim.measure_cmds import MeasureCommands
from stim.safety import ticks_add, ticks_diff
from stim.scpi import Parser, check_suffix
from stim.source_cmds import SourceCommands
from stim.system_cmds import SystemCommands
from stim.trigger import TriggerControl

IMMEDIATE, EXTERNAL, BUS = 0, 1, 2

for _code, _msg in safety.MESSAGES.items():
    define(_code, _msg)

_RESTART_MARGIN_MS = 2  # after disarming, wait this much past the longest pulse in flight
_SESSION_SAVE_MS = 10_000
_PRESET = "preset%d.json"
_NO_ROOM = "no room in the 2048 words of record memory"
_SETTINGS = segments.Settings.__slots__


class Instrument:
    def __init__(self, hw, reset_cause="POWER"):
        self.hw = hw
        self.leads = hw.leads
        self.errors = ErrorQueue(16)
        self.parser = Parser(self.errors)
        self.limits = limits.Limits()
        self.global_on = False
        self.trig_source = IMMEDIATE
        self.trigger = TriggerControl()
        self.sync_on = True
        self.sync_source = 1
        self.sync_every = False
        self.now = 0
        self.reset_cause = reset_cause
        self.faults = []
        self.heartbeat = safety.Heartbeat()
        self.session = safety.SessionTimer()
        self.button = safety.Debouncer(pressed_level=0)
        self.ramps = [safety.Ramp() for _ in self.leads]
        self.amps = [Amplitude(hw.engine, hw.dac, lead) for lead in self.leads]
        self.lock = LockBox()
        self.log = EventLog()
        self._interlock_was = True
        self._bus_running = False
        self._bus_at = 0
        self._restart_at = None  # ticks_ms when leads changed while running restart
        self._restart = []
        self._quiet = [None] * len(self.leads)  # per lead: ticks_ms it may start again
        self._session_saved = 0
        CommonCommands(self, self.parser)
        SourceCommands(self, self.parser)
        SystemCommands(self, self.parser)
        MeasureCommands(self, self.parser)

    # ------------------------------------------------------------------ main loop hooks

    def boot(self, now):
        self.now = now
        self.hw.rest()
        self.log.load()
        self.lock.load(now)
        if self.lock.locked and self.lock.limits:
            self._limits_from(self.lock.limits)
        rec = self._load_quietly("session.json")
        if rec:
            self.session.limit_ms = rec.get("limit_ms", 0)
            self.session.used_ms = rec.get("used_ms", 0)
        code = safety.WATCHDOG_RESET if self.reset_cause == "WATCHDOG" else 0
        self.log.add(now, code, "boot, reset cause " + self.reset_cause)
        if code:
            self.errors.push(code)
        self._interlock_was = self.interlock_closed()

    def execute(self, line, now):
        self.now = now
        self.heartbeat.feed(now)
        return self.parser.run(line) or None  # replies for SerialPort.write_replies

    def out_of_memory(self):
        """A line failed for want of heap outside any handler: -225, and nothing else."""
        try:
            self.errors.push(OUT_OF_MEMORY)
        except MemoryError:
            pass

    def service(self, now):
        self.now = now
        closed = self.interlock_closed()
        if closed != self._interlock_was:
            self._interlock_was = closed
            self.log.add(now, 0, "interlock " + ("closed" if closed else "open"))
            if not closed:
                self.trip(safety.INTERLOCK_OPEN)
        if self.heartbeat.expired(now) and safety.HOST_LOST not in self.faults:
            self.heartbeat.feed(now)
            if self.global_on:
                self.trip(safety.HOST_LOST)
        event = self.button.update(self.hw.button.value(), now)
        if event == "short":
            self._button_toggle()
        elif event == "long":
            self.clear_faults()
        running = self.global_on and any(ld.running for ld in self.leads)
        self.session.tick(running, now)
        if self.session.over() and self.global_on:
            self.trip(safety.SESSION_OVER)
        if running and ticks_diff(now, self._session_saved) >= _SESSION_SAVE_MS:
            self.save_session()
        if self._restart_at is not None and ticks_diff(now, self._restart_at) >= 0:
            leads = [ld for ld in self._restart if self._should_run(ld) and not ld.running]
            self._restart = []
            self._restart_at = None
            if self.trig_source == IMMEDIATE:
                self._start_or_stop(leads)
            elif self.trig_source == EXTERNAL:
                self.trigger.begin(now)  # re-armed for the next edge with the new settings
            else:
                self._start_or_stop(leads, go=False)
        for i, until in enumerate(self._quiet):
            if until is not None and ticks_diff(now, until) >= 0:
                self._quiet[i] = None
                if not self.leads[i].running:
                    # Stopped and its last pulse long over: end its DMA, so the idle state
                    # machine stalls at rest instead of playing rest segments for ever.
                    self.leads[i].stop_now()
        self._trigger_service(now)
        for lead, ramp, amp in zip(self.leads, self.ramps, self.amps):
            amp.service(ramp.value(now), now)
        self.hw.led.value(safety.led_level(self._led_state(), now))

    @property
    def trig_mode(self):
        return self.trigger.mode

    @trig_mode.setter
    def trig_mode(self, mode):
        self.trigger.mode = mode

    def _trigger_service(self, now):
        if not self.global_on or self.trig_source != EXTERNAL:
            return
        leads = [ld for ld in self.leads if ld.enabled]
        rises = self.hw.take_trigger_rises()
        action = self.trigger.update(rises, self.hw.trigger.value(), now, self._train_ms(leads))
        if action == "arm":
            self._start(leads, trigger=True)
            self.hw.take_trigger_rises()
            self.trigger.armed(now)
        elif action == "stop":
            self._stop_leads([ld for ld in leads if ld.running])

    def _arm_external(self, leads):
        """Arm now if the trigger input is low, so the next edge is never missed; else as
        soon as it goes low."""
        self.trigger.begin(self.now)
        if not self.hw.trigger.value():
            self._start(leads, trigger=True)
            self.hw.take_trigger_rises()  # count only edges from now on
            self.trigger.armed(self.now)

    def _quiet_ms(self, leads):
        """How long after a stop every pulse in flight has surely ended."""
        longest = 0
        for ld in leads:
            longest = max(longest, segments.pulse_cycles(ld.settings))
        return longest // 125_000 + _RESTART_MARGIN_MS

    def _train_ms(self, leads):
        """How long a triggered train plays (0 if any lead runs for ever)."""
        longest = 0
        for ld in leads:
            s = ld.settings
            if not s.train:
                return 0
            longest = max(longest, s.delay + s.train + segments.pulse_cycles(s))
        return longest // 125_000 + 2

    def _led_state(self):
        if self.faults:
            return safety.LED_FAULT
        if self.global_on:
            return safety.LED_ON
        return safety.LED_LOCKED if self.lock.locked else safety.LED_OFF

    # ------------------------------------------------------------------ safety

    def interlock_closed(self):
        return self.hw.interlock.value() == 1

    def trip(self, code):
        """Latch a fault: every lead finishes its pulse in flight, then all outputs rest."""
        self._all_off()
        if code not in self.faults:
            self.faults.append(code)
        self.errors.push(code)
        self.log.add(self.now, code, safety.MESSAGES.get(code, "fault"))

    def clear_faults(self):
        self.faults = [c for c in self.faults if c == safety.SESSION_OVER and self.session.over()]
        if not self.interlock_closed():
            self.faults.append(safety.INTERLOCK_OPEN)

    def clear_fault(self, code):
        if code in self.faults:
            self.faults.remove(code)

    def _button_toggle(self):
        if self.global_on:
            self.set_global(False)
            return
        try:
            self.set_global(True)
        except ScpiError as exc:
            self.errors.push(exc.code)

    def require_unlocked(self):
        if self.lock.locked:
            self.log.add(self.now, safety.LIMITS_LOCKED, "limit change refused")
            raise ScpiError(safety.LIMITS_LOCKED)

    def do_lock(self, passcode):
        if self.lock.locked:
            raise ScpiError(safety.LIMITS_LOCKED, "already locked")
        if len(passcode) < 4:
            raise ScpiError(-224, "passcode needs at least 4 characters")
        self.lock.lock(passcode, self._limits_dict())
        self.log.add(self.now, 0, "limits locked")

    def do_unlock(self, passcode):
        wait = self.lock.wait_ms(self.now)
        if wait:
            raise ScpiError(safety.PASSCODE_WAIT, "retry in %d s" % ((wait + 999) // 1000))
        if not self.lock.locked:
            return
        if not self.lock.unlock(passcode, self.now):
            self.log.add(self.now, safety.WRONG_PASSCODE, "wrong passcode")
            raise ScpiError(safety.WRONG_PASSCODE)
        self.log.add(self.now, 0, "limits unlocked")

    def _limits_dict(self):
        return {k: getattr(self.limits, k) for k in limits.Limits.__slots__}

    def _limits_from(self, d):
        for k, v in d.items():
            if k in limits.Limits.__slots__:
                setattr(self.limits, k, v)

    def change_limits(self, apply, value):
        """Change one limit if every lead's present settings still keep within all limits."""
        new = limits.Limits()
        for k in limits.Limits.__slots__:
            setattr(new, k, getattr(self.limits, k))
        apply(new, value)
        for lead in self.leads:
            try:
                limits.check(new, lead.settings, lead.current)
            except ScpiError:
                raise ScpiError(
                    SETTINGS_CONFLICT, "lead %d is outside the new limit" % (lead.index + 1)
                )
        self.limits = new

    def save_session(self):
        self._session_saved = self.now
        try:
            store.save(
                "session.json",
                {"limit_ms": self.session.limit_ms, "used_ms": self.session.used_ms},
            )
        except (OSError, MemoryError):
            pass  # as the event log: never stops the safety reaction that saves it

    def _load_quietly(self, name):
        try:
            return store.load(name)
        except store.Corrupt:
            return None

    # ------------------------------------------------------------------ leads

    def lead(self, n):
        return self.leads[check_suffix(n, 1, len(self.leads)) - 1]

    def reset_state(self):
        """*RST: outputs off and at rest, every setting to its default (limits stay).

        Each lead finishes its pulse in flight first (as OUTP:GLOB OFF), so *RST never
        leaves an unbalanced pulse; the DAC is zeroed once that pulse has ended."""
        if self.global_on:
            self._all_off()
        self.global_on = False
        self.trig_source = IMMEDIATE
        self.trigger.mode = 0
        self.sync_on = True
        self.sync_source = 1
        self.sync_every = False
        self._restart = []
        self._restart_at = None
        for lead, ramp, amp in zip(self.leads, self.ramps, self.amps):
            lead.settings = segments.Settings()
            lead.enabled = False
            lead.current = 0
            ramp.ramp_ms = 2000
            ramp.set_target(0, self.now)

    def _should_run(self, lead):
        return self.global_on and lead.enabled

    def check_limits(self, lead, settings, code):
        limits.check(self.limits, settings, code)

    def min_period(self):
        return limits.min_period(self.limits)

    def max_current_code(self, lead):
        return self.limits.max_code

    def set_current(self, lead, code):
        lead.current = code
        self.ramps[lead.index].set_target(code, self.now)

    def settings_changed(self, lead):
        """A running lead finishes its pulse in flight, then restarts with the new settings."""
        if lead.running:
            self._stop_leads([lead])
            self._start_later([lead], self._wait_ms(lead))

    def _start_later(self, leads, wait):
        for lead in leads:
            if lead not in self._restart:
                self._restart.append(lead)
        at = ticks_add(self.now, wait)
        if self._restart_at is None or ticks_diff(at, self._restart_at) > 0:
            self._restart_at = at

    def _wait_ms(self, lead):
        until = self._quiet[lead.index]
        return 0 if until is None else max(0, ticks_diff(until, self.now))

    def _start_or_stop(self, leads, trigger=False, go=True):
        """Start from the main loop, where no command reports a failure: if it fails (e.g.
        no heap for a burst's record), the output goes off and the error is queued, instead
        of the exception ending the main loop."""
        try:
            self._start(leads, trigger, go)
        except Exception as e:
            self._all_off()
            try:
                if isinstance(e, ScpiError):
                    self.errors.push(e.code, e.detail)
                else:
                    self.errors.push(-200)
            except Exception:
                pass

    def _park_idle(self, keep):
        """Stop the leads that were turned off and have played their last pulse, so their
        rings go back to the pool."""
        for ld in self.leads:
            if ld not in keep and not ld.running and ld.holds_ring() and not self._wait_ms(ld):
                self.hw.engine.park(ld)

    def _room(self, requests, keep):
        """Milliseconds until the pool can hold `requests` (0: now), once the leads that were
        turned off and still play their last pulse have ended; -225 if it never can."""
        self._park_idle(keep)
        rings = self.hw.rings
        if rings.fits(requests):
            return 0
        ending = [ld for ld in self.leads if ld not in keep and not ld.running and ld.holds_ring()]
        if ending and rings.fits(requests + [(ld.ring_id, 0) for ld in ending]):
            return max(self._wait_ms(ld) for ld in ending) + 1
        raise ScpiError(OUT_OF_MEMORY, _NO_ROOM)

    def room_for(self, lead, settings):
        """-225, before anything changes, if a lead that is to run could not hold the record
        of `settings` beside the rings of the others."""
        if self._should_run(lead):
            self._room([(lead.ring_id, segments.record_len(settings))], [lead])

    def _start(self, leads, trigger=False, go=True):
        if not leads:
            return
        wait = max(self._wait_ms(ld) for ld in leads)
        if wait:
            # A lead stopped moments ago: restarting re-initialises its state machine, which
            # would cut its pulse in flight, and its next pulse must keep to the limits. All
            # of them start together once it may.
            self._start_later(leads, wait)
            return
        wait = self._room([(ld.ring_id, ld.record_words()) for ld in leads], leads)
        if wait:
            self._start_later(leads, wait)  # once the leads turned off free their rings
            return
        for lead in leads:
            self.ramps[lead.index].restart(self.now)
            self.amps[lead.index].started(self.now)
        sync = None
        if self.sync_on:
            src = self.leads[self.sync_source - 1]
            if src in leads:
                sync = (src, self.sync_every)
        pin = self.hw.trigger_pin if trigger else None
        self.hw.engine.start(leads, pin, sync, go)

    def _stop_leads(self, leads):
        self.hw.engine.disarm(leads)
        for lead in leads:
            amp = self.amps[lead.index]
            amp.stopped(self.now)
            # Quiet until the pulse in flight has ended and a next one would keep the
            # frequency and duty-cycle limits after it (the last one started before now).
            pulse = segments.pulse_cycles(amp.playing)
            need = max(
                pulse + segments.MIN_OFF,
                limits.min_period(self.limits),
                pulse * 100 // self.limits.max_duty_pct,
            )
            wait = _RESTART_MARGIN_MS + need // 125_000 + 1
            self._quiet[lead.index] = ticks_add(amp.stopped_at, wait)

    def set_lead_enabled(self, lead, on):
        was = lead.enabled
        lead.enabled = on
        if not self.global_on:
            return
        if on and not lead.running and self.trig_source == IMMEDIATE:
            try:
                self._start([lead])
            except Exception:
                lead.enabled = was  # refused: nothing changed
                raise
        elif not on and lead.running:
            self._stop_leads([lead])

    def set_global(self, on):
        if on == self.global_on:
            return
        if on:
            if not self.interlock_closed():
                raise ScpiError(safety.INTERLOCK_STILL_OPEN)
            if self.faults:
                raise ScpiError(safety.FAULT_LATCHED)
            if self.session.over():
                raise ScpiError(safety.SESSION_OVER)
            self.global_on = True
            leads = [ld for ld in self.leads if ld.enabled]
            try:
                if self.trig_source == IMMEDIATE:
                    self._start(leads)
                elif self.trig_source == EXTERNAL:
                    self._arm_external(leads)
                else:
                    self._start(leads, go=False)  # *TRG starts them
            except Exception:
                self._all_off()  # a start that failed (no heap) must not report output on
                raise
        else:
            self._all_off()

    def _all_off(self):
        self.global_on = False
        self._bus_running = False
        self._restart = []
        self._restart_at = None
        self.trigger.end()
        self._stop_leads([ld for ld in self.leads if ld.running])
        self.save_session()

    def bus_trigger(self):
        """*TRG with TRIG:SOUR BUS: start the armed leads. NORMal: a *TRG while the train
        plays is ignored; once it has played out, *TRG plays it again. TOGGle: a second *TRG
        stops the train (the pulse in flight ends whole), a third starts it again."""
        if not self.global_on or self.trig_source != BUS:
            return
        leads = [ld for ld in self.leads if ld.enabled]
        now = self.now
        if self._bus_running:
            if self.trig_mode == 1:
                self._stop_leads([ld for ld in leads if ld.running])
                self._bus_running = False
                self._bus_at = now
                return
            train = self._train_ms(leads)
            if not train or ticks_diff(now, self._bus_at) < train:
                return  # still playing
            self._start(leads)  # played out: every pin rests, so re-preparing cuts nothing
        elif all(ld.running for ld in leads):
            self.hw.engine.go(leads)  # armed at OUTP:GLOB ON
        else:
            wait = self._quiet_ms(leads)
            if ticks_diff(now, self._bus_at) < wait:
                raise ScpiError(SETTINGS_CONFLICT, "the last pulse is still ending")
            self._start(leads)
        self._bus_running = True
        self._bus_at = now

    def self_test(self):
        """*TST?: 0 if every check passes, else a bit mask (stim.measure.self_test)."""
        from stim.measure_cmds import call

        return call("self_test", self)

    # ------------------------------------------------------------------ presets

    def save_preset(self, n):
        rec = {
            "leads": [
                [getattr(ld.settings, k) for k in _SETTINGS]
                + [ld.current, self.ramps[ld.index].ramp_ms]
                for ld in self.leads
            ]
        }
        store.save(_PRESET % n, rec)
        self.log.add(self.now, 0, "preset %d saved" % n)

    def recall_preset(self, n):
        """Load preset n with outputs off; a bad preset gives safe defaults and an error."""
        try:
            rec = store.load(_PRESET % n)
        except store.Corrupt:
            rec = None
            corrupt = True
        else:
            corrupt = False
        if rec is None and not corrupt:
            raise ScpiError(safety.PRESET_EMPTY, str(n))
        self.set_global(False)
        new = []
        try:
            for row in rec["leads"]:  # type: ignore[index]
                s = segments.Settings()
                for k, v in zip(_SETTINGS, row):
                    setattr(s, k, v)
                if segments.conflict(s) is not None:
                    raise ValueError
                limits.check(self.limits, s, row[len(_SETTINGS)])
                new.append((s, row[len(_SETTINGS)], row[len(_SETTINGS) + 1]))
            if len(new) != len(self.leads):
                raise ValueError
        except (ValueError, TypeError, KeyError, IndexError, ScpiError):
            self.reset_state()
            self.log.add(self.now, safety.PRESET_CORRUPT, "preset %d" % n)
            raise ScpiError(safety.PRESET_CORRUPT, str(n))
        for lead, (s, code, ramp_ms) in zip(self.leads, new):
            lead.settings = s
            lead.enabled = False
            self.ramps[lead.index].ramp_ms = ramp_ms
            self.set_current(lead, code)

// Node.js 20 lacks Promise.withResolvers (it arrived in Node.js 22), and
// it-queue, which js-libp2p's peer store reaches through mortice, calls it
// at run time. Debian 13 ships Node.js 20, so dial.mjs imports this module
// first. It adds the method only where it is missing, with the behaviour
// the TC39 proposal specifies: a new promise and its two settle functions.

if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers () {
      let resolve
      let reject
      const promise = new this((res, rej) => {
        resolve = res
        reject = rej
      })
      return { promise, resolve, reject }
    }
  })
}
